"""Edges of redaction that the mutation run (`make mutation`) found untested."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from httpx_resilience._redact import REDACTED, Redactor, is_secret_field

SECRET = "abcdefgh"
IDEMPOTENCY = "Idempotency-Key"
URL = "https://api.example.com/v1/things"


def redactor_for(request: httpx.Request) -> Redactor:
    return Redactor.for_request(request, IDEMPOTENCY)


def json_request(body: Any, content_type: str = "application/json") -> httpx.Request:
    content = json.dumps(body).encode()
    return httpx.Request("POST", URL, content=content, headers={"Content-Type": content_type})


# --- Secret field names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["apikey", "passwd", "passphrase", "signature", "credential", "sig", "auth"]
)
def test_more_secret_field_names(name: str) -> None:
    """Body fields named apikey, passwd, passphrase, signature, credential, sig or auth are secret."""
    assert is_secret_field(name) is True


# --- Cut texts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see abcd", f"see {REDACTED}"),
        ("see abcde", f"see {REDACTED}"),
        ("see abc", "see abc"),
    ],
    ids=["4 characters", "5 characters", "3 characters"],
)
def test_a_secrets_start_left_at_a_cut(text: str, expected: str) -> None:
    """Where text was cut, a secret's first 4 or 5 characters are redacted; 3 are too few to tell."""
    assert Redactor([SECRET]).text(text, cut=True) == expected


def test_a_text_that_is_only_a_secrets_start_is_redacted() -> None:
    """A cut text that holds nothing but the start of a secret is redacted whole."""
    assert Redactor([SECRET]).text("abcde", cut=True) == REDACTED


def test_a_secret_one_character_short_at_a_cut() -> None:
    """A secret cut just before its last character is still redacted."""
    assert Redactor([SECRET]).text("got abcdefg", cut=True) == f"got {REDACTED}"


def test_a_secrets_start_is_found_past_a_false_start() -> None:
    """When its first 4 characters also start earlier, the real start of a cut secret is found."""
    assert Redactor(["aaaabcdef"]).text("zz aaaaab", cut=True) == f"zz a{REDACTED}"


def test_the_longest_secret_is_trimmed_first() -> None:
    """Of two secrets whose starts end a cut text, the longer (covering more of it) is redacted."""
    redactor = Redactor(["xyzw1234", "abcdefxyzw99"])
    assert redactor.text("id abcdefxyzw", cut=True) == f"id {REDACTED}"


def test_text_after_the_last_cut_mark_is_not_a_cut() -> None:
    """A text not cut at its end keeps a secret-like start after its last "…": only a cut can split a secret."""
    redactor = Redactor([SECRET])
    assert redactor.text("see abcd… then abcd") == f"see {REDACTED}… then abcd"


def test_parts_of_six_characters_are_scrubbed() -> None:
    """A credential part of 6 characters is scrubbed whole; one of 5 is not."""
    redactor = Redactor([], parts=["qwerty", "asdfg"])
    assert redactor.text("x qwerty asdfg y") == f"x {REDACTED} asdfg y"


# --- data(): the depth bound ----------------------------------------------------------------------


def _lists(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _dicts(depth: int, key: Any, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {key: value}
    return value


def test_data_keeps_values_31_levels_down() -> None:
    """A value under 31 levels of lists and objects is kept as it is."""
    redactor = Redactor([SECRET])
    assert redactor.data(_lists(31, 5)) == _lists(31, 5)
    assert redactor.data(_dicts(31, 1, 5)) == _dicts(31, 1, 5)


def test_data_redacts_what_lies_32_levels_down() -> None:
    """Past the depth bound (32), keys and values are replaced by [REDACTED] rather than walked."""
    redactor = Redactor([SECRET])
    assert redactor.data(_lists(32, 5)) == _lists(32, REDACTED)
    assert redactor.data(_dicts(32, 1, 5)) == _dicts(31, 1, {REDACTED: REDACTED})


# --- Redacted copies of a response ----------------------------------------------------------------


def test_a_response_copy_trims_a_secret_cut_at_the_end_of_its_body() -> None:
    """A copied body is a capped text: a secret's start at its end is redacted."""
    response = httpx.Response(500, content=b"echo abcde")
    copy = Redactor([SECRET]).response(response, None)
    assert copy.content == f"echo {REDACTED}".encode()


def test_a_response_copy_keeps_header_values_that_merely_end_like_a_secret() -> None:
    """A header value is no cut text: one ending with a secret's first characters is kept."""
    response = httpx.Response(500, headers={"X-Info": "see abcd"})
    copy = Redactor([SECRET]).response(response, None)
    assert copy.headers["x-info"] == "see abcd"


def test_a_response_copy_keeps_the_plain_extensions() -> None:
    """A copy keeps http_version, reason_phrase and request_id, and no other extension."""
    extensions = {
        "http_version": b"HTTP/1.1",
        "reason_phrase": b"Teapot",
        "request_id": "r-1",
        "network_stream": object(),
    }
    response = httpx.Response(418, extensions=extensions)
    copy = Redactor([SECRET]).response(response, None)
    assert copy.extensions == {
        "http_version": b"HTTP/1.1",
        "reason_phrase": b"Teapot",
        "request_id": "r-1",
    }


def test_a_response_copy_drops_transfer_encoding() -> None:
    """The copy holds the whole decoded body: no Transfer-Encoding is kept with it."""
    response = httpx.Response(200, headers={"Transfer-Encoding": "chunked"}, content=b"ok")
    copy = Redactor([SECRET]).response(response, None)
    assert "transfer-encoding" not in copy.headers


# --- Secrets a request carries --------------------------------------------------------------------

DIGEST = (
    'Digest username="alice", realm="api", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b"'
)


def _digest() -> Redactor:
    return redactor_for(httpx.Request("GET", URL, headers={"Authorization": DIGEST}))


def test_a_digest_credential_echoed_whole_is_one_redaction() -> None:
    """The whole credential of a Digest Authorization, echoed, is redacted as one."""
    credentials = DIGEST.partition(" ")[2]
    assert _digest().text(f"rejected: {credentials}") == f"rejected: {REDACTED}"


def test_a_digest_parameter_echoed_alone_is_redacted() -> None:
    """One `name="value",` piece of a Digest credential, echoed alone, is redacted."""
    text = 'got nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", expected another'
    assert _digest().text(text) == f"got {REDACTED} expected another"


@pytest.mark.parametrize("value", ["6629fae49393a05397450978507c4ef1", "0a4f113b"])
def test_digest_response_and_cnonce_values_are_secret_bare(value: str) -> None:
    """A Digest response hash or cnonce, echoed without its name or quotes, is redacted."""
    assert _digest().text(f"value {value} refused") == f"value {REDACTED} refused"


def test_set_cookie_attributes_of_any_length_are_not_secret() -> None:
    """Of a Set-Cookie, only the cookie's value is secret: a long Path attribute is not."""
    headers = {"Set-Cookie": "sid=abcdef123456; Path=/account/settings"}
    redactor = redactor_for(httpx.Request("GET", URL, headers=headers))
    assert redactor.text("see /account/settings") == "see /account/settings"


def test_a_query_parameter_is_secret_by_its_name_anywhere() -> None:
    """A query parameter whose name holds a secret word anywhere (session_id) is scrubbed."""
    redactor = redactor_for(httpx.Request("GET", f"{URL}?session_id=abcdef123456"))
    assert redactor.text("session abcdef123456") == f"session {REDACTED}"


def test_a_form_field_is_secret_only_by_its_last_word() -> None:
    """In a form body, max_tokens names no secret (its last word is not one): its value stays."""
    data = {"max_tokens": "123456", "client_secret": "cs_9f8e7d6c5b4a"}
    redactor = redactor_for(httpx.Request("POST", URL, data=data))
    assert redactor.text("max_tokens 123456, cs_9f8e7d6c5b4a") == f"max_tokens 123456, {REDACTED}"


def test_a_form_body_with_raw_non_ascii_bytes_is_read() -> None:
    """A form body carrying raw UTF-8 bytes still gives its secret fields."""
    content = "note=café&client_secret=cs_9f8e7d6c5b4a".encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    redactor = redactor_for(httpx.Request("POST", URL, content=content, headers=headers))
    assert redactor.text("cs_9f8e7d6c5b4a") == REDACTED


def test_a_body_of_another_type_is_not_searched() -> None:
    """A text/plain body is not read as JSON, though it parses as JSON."""
    redactor = redactor_for(json_request({"client_secret": "cs_9f8e7d6c5b4a"}, "text/plain"))
    assert redactor.text("cs_9f8e7d6c5b4a") == "cs_9f8e7d6c5b4a"


def test_a_json_secret_with_a_lone_surrogate_is_scrubbed() -> None:
    """A JSON secret holding a lone surrogate (valid JSON, not valid UTF-8) is scrubbed as escaped."""
    content = b'{"client_secret": "\\ud800abcdefg"}'
    headers = {"Content-Type": "application/json"}
    redactor = redactor_for(httpx.Request("POST", URL, content=content, headers=headers))
    assert redactor.text("bad \\ud800abcdefg") == f"bad {REDACTED}"


@pytest.mark.parametrize(
    ("value", "echoed"),
    [
        ("tok\x85en-123456", "tok\\x85en-123456"),
        ("clé-123456", "cl\\xc3\\xa9-123456"),
        ("clé-123456", "cl\\u00e9-123456"),
        ('clé"123456', 'clé\\"123456'),
    ],
    ids=["repr of the str", "repr of its UTF-8 bytes", "JSON", "JSON kept in Unicode"],
)
def test_each_escaped_form_is_scrubbed_whole(value: str, echoed: str) -> None:
    """A secret echoed as repr() or JSON escape it (a form no other matches) is redacted whole."""
    redactor = redactor_for(json_request({"client_secret": value}))
    assert redactor.text(f"bad {echoed}!") == f"bad {REDACTED}!"


def _nested_secret(levels: int, inner: str) -> Any:
    """A JSON body with a client_secret under `levels` objects (inner="dicts") or in `levels` lists."""
    if inner == "dicts":
        return _dicts(levels, "a", {"client_secret": "cs_9f8e7d6c5b4a"})
    return {"client_secret": _lists(levels, "cs_9f8e7d6c5b4a")}


@pytest.mark.parametrize(
    ("inner", "levels", "found"),
    [("dicts", 30, True), ("dicts", 31, False), ("lists", 30, True), ("lists", 31, False)],
    ids=repr,
)
def test_json_body_depth_bound(inner: str, levels: int, found: bool) -> None:
    """A JSON secret is found down to depth 31 (30 enclosing objects, or 30 lists under its key), not at 32."""
    redactor = redactor_for(json_request(_nested_secret(levels, inner)))
    assert (redactor.text("cs_9f8e7d6c5b4a") == REDACTED) is found
