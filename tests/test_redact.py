"""Tests for secret redaction in ``httpx_resilience._redact``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from httpx_resilience._redact import REDACTED, Redactor, is_secret_name, redact_url

TOKEN = "sk-live-9f8e7d6c5b4a"
IDEMPOTENCY = "Idempotency-Key"


def redactor_for(
    url: str = "https://api.example.com/v1/things",
    headers: dict[str, str] | None = None,
    allowed: str | None = IDEMPOTENCY,
) -> Redactor:
    return Redactor.for_request(httpx.Request("POST", url, headers=headers), allowed)


# --- is_secret_name -----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "x-api-key",
        "X-Auth-Token",
        "client_secret",
        "X-Amz-Signature",
        "apikey",
        "APIKEY",
        "access_token",
        "db_password",
        "X-Secret-Value",
        "Idempotency-Key",
    ],
)
def test_secret_names(name: str) -> None:
    """The fixed secret headers and names containing key/token/secret/password/signature."""
    assert is_secret_name(name) is True


@pytest.mark.parametrize("name", ["Content-Type", "Accept", "User-Agent", "q", "page", "X-Trace"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    """Ordinary header and parameter names are not secret."""
    assert is_secret_name(name) is False


@pytest.mark.parametrize("allowed", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_allowed_name_is_exempt_case_insensitively(allowed: str) -> None:
    """The allowed name (the idempotency key header) is not secret, whatever its case."""
    assert is_secret_name("Idempotency-Key", allowed) is False
    assert is_secret_name("idempotency-key", allowed) is False


def test_allowed_name_exempts_only_itself() -> None:
    """Naming an allowed header does not exempt other secret names."""
    assert is_secret_name("X-Api-Key", "Idempotency-Key") is True
    assert is_secret_name("Authorization", "Idempotency-Key") is True


# --- redact_url ---------------------------------------------------------------


@pytest.mark.parametrize("param", ["api_key", "access_token", "X-Amz-Signature", "client_secret"])
def test_redact_url_secret_query_values(param: str) -> None:
    """A secret query parameter's value becomes [REDACTED] and never appears."""
    text = redact_url(httpx.URL(f"https://api.example.com/v1?{param}=s3cr3tvalue&page=2"))
    assert f"{param}={REDACTED}" in text
    assert "s3cr3tvalue" not in text


def test_redact_url_keeps_other_query_params() -> None:
    """Non-secret parameters keep their values and order."""
    text = redact_url(httpx.URL("https://api.example.com/v1?q=cats&api_key=zzz&page=2"))
    assert text == f"https://api.example.com/v1?q=cats&api_key={REDACTED}&page=2"


def test_redact_url_password_redacted_username_kept() -> None:
    """Userinfo keeps the username and hides the password."""
    text = redact_url(httpx.URL("https://alice:hunter2pw@api.example.com/v1"))
    assert "hunter2pw" not in text
    assert text == f"https://alice:{REDACTED}@api.example.com/v1"


def test_redact_url_username_without_password_kept() -> None:
    """A username without a password is shown as is."""
    assert redact_url(httpx.URL("https://alice@api.example.com/v1")) == (
        "https://alice@api.example.com/v1"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/things",
        "http://localhost:8080/",
        "https://api.example.com/a%20b/c%2Fd",
    ],
)
def test_redact_url_without_query_unchanged(url: str) -> None:
    """A URL with neither query nor userinfo is returned unchanged."""
    assert redact_url(httpx.URL(url)) == url


def test_redact_url_drops_fragment_with_query() -> None:
    """The fragment is not shown when the URL has a query."""
    text = redact_url(httpx.URL("https://api.example.com/v1?q=1#section-9"))
    assert "section-9" not in text
    assert "#" not in text


def test_redact_url_drops_fragment_without_query() -> None:
    """The fragment (which can carry an OAuth access_token) is not shown, even with no query."""
    text = redact_url(httpx.URL("https://app.example.com/callback#access_token=ya29secretvalue"))
    assert "ya29secretvalue" not in text
    assert "#" not in text


def test_redact_url_keeps_port_and_encoded_path() -> None:
    """Port and percent-encoded path survive redaction."""
    text = redact_url(httpx.URL("https://u:pw123456@api.example.com:8443/a%20b/c%2Fd?token=abc"))
    assert text == f"https://u:{REDACTED}@api.example.com:8443/a%20b/c%2Fd?token={REDACTED}"


def test_redact_url_percent_encoded_secret_name() -> None:
    """A secret parameter name written percent-encoded is still recognised."""
    text = redact_url(httpx.URL("https://api.example.com/?api%5Fkey=s3cr3tvalue"))
    assert "s3cr3tvalue" not in text


# --- Redactor.for_request -----------------------------------------------------


def test_bearer_token_scrubbed_as_full_value_and_bare_token() -> None:
    """Both `Bearer <tok>` and the bare token are removed from text."""
    r = redactor_for(headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.text(f"got header Bearer {TOKEN}") == f"got header {REDACTED}"
    assert r.text(f"invalid key {TOKEN}!") == f"invalid key {REDACTED}!"


def test_proxy_authorization_token_scrubbed() -> None:
    """The credential part of `Proxy-Authorization` is scrubbed too."""
    r = redactor_for(headers={"Proxy-Authorization": "Basic dXNlcjpwYXNzd29yZA=="})
    assert "dXNlcjpwYXNzd29yZA==" not in r.text("proxy said dXNlcjpwYXNzd29yZA== is bad")


def test_cookie_values_scrubbed() -> None:
    """Each cookie value is scrubbed on its own."""
    r = redactor_for(headers={"Cookie": "session=abcdef123456; csrf=zyxwvu987654"})
    out = r.text("cookies: abcdef123456 and zyxwvu987654")
    assert "abcdef123456" not in out
    assert "zyxwvu987654" not in out
    assert out == f"cookies: {REDACTED} and {REDACTED}"


def test_x_api_key_value_scrubbed() -> None:
    """The `X-Api-Key` value is scrubbed."""
    r = redactor_for(headers={"X-Api-Key": "key_0123456789"})
    assert r.text("bad key key_0123456789") == f"bad key {REDACTED}"


def test_secret_query_value_scrubbed() -> None:
    """The value of a secret query parameter is scrubbed; others are not."""
    r = redactor_for(url="https://api.example.com/v1?api_key=qk_abcdef9876&page=123456")
    assert r.text("key qk_abcdef9876 page 123456") == f"key {REDACTED} page 123456"


def test_url_password_scrubbed() -> None:
    """A password in the URL's userinfo is scrubbed."""
    r = redactor_for(url="https://alice:pw_s3cr3t_99@api.example.com/v1")
    assert r.text("auth failed for pw_s3cr3t_99") == f"auth failed for {REDACTED}"


def test_allowed_idempotency_key_not_collected() -> None:
    """The idempotency key header value stays visible when it is the allowed header."""
    key = "idem-1234567890abcdef"
    r = redactor_for(headers={IDEMPOTENCY: key}, allowed=IDEMPOTENCY)
    assert r.text(f"conflict on key {key}") == f"conflict on key {key}"


def test_idempotency_key_collected_when_not_allowed() -> None:
    """Without the exemption, a header named like a key is treated as secret."""
    key = "idem-1234567890abcdef"
    r = redactor_for(headers={IDEMPOTENCY: key}, allowed=None)
    assert key not in r.text(f"conflict on key {key}")


def test_short_values_not_scrubbed() -> None:
    """Values under 6 characters are not scrubbed (they would wreck ordinary text)."""
    r = redactor_for(headers={"X-Api-Key": "abc12", "Cookie": "a=on; b=1"})
    text = "value abc12 is on, count 1"
    assert r.text(text) == text


def test_six_char_value_is_scrubbed() -> None:
    """A value of exactly 6 characters is scrubbed."""
    r = redactor_for(headers={"X-Api-Key": "abc123"})
    assert r.text("key abc123") == f"key {REDACTED}"


def test_non_secret_headers_not_collected() -> None:
    """Ordinary header values are not scrubbed."""
    r = redactor_for(headers={"User-Agent": "my-sdk/1.2.3", "X-Api-Key": TOKEN})
    assert r.text("agent my-sdk/1.2.3") == "agent my-sdk/1.2.3"


def test_for_request_none_scrubs_nothing() -> None:
    """No request means no secrets."""
    r = Redactor.for_request(None, IDEMPOTENCY)
    assert r.text(f"Bearer {TOKEN}") == f"Bearer {TOKEN}"


# --- Redactor.text / .data ----------------------------------------------------


def test_data_scrubs_nested_dicts_and_lists() -> None:
    """Strings inside nested dicts and lists are scrubbed."""
    r = Redactor([TOKEN])
    data = {"error": {"message": f"bad {TOKEN}", "seen": [f"{TOKEN}", {"x": f"a{TOKEN}b"}]}}
    assert r.data(data) == {
        "error": {"message": f"bad {REDACTED}", "seen": [REDACTED, {"x": f"a{REDACTED}b"}]}
    }


def test_data_scrubs_tuples() -> None:
    """Strings inside a tuple are scrubbed as well."""
    r = Redactor([TOKEN])
    assert list(r.data((TOKEN, "ok"))) == [REDACTED, "ok"]


def test_data_leaves_non_strings_alone() -> None:
    """Numbers, booleans, None and floats pass through unchanged."""
    r = Redactor([TOKEN])
    data = {"n": 123456789, "f": 1.5, "b": True, "none": None, "list": [7, False]}
    assert r.data(data) == data


def test_data_does_not_mutate_input() -> None:
    """`data()` returns a copy and leaves the caller's structure as it was."""
    r = Redactor([TOKEN])
    original = {"a": [f"x {TOKEN}"]}
    r.data(original)
    assert original == {"a": [f"x {TOKEN}"]}


def _nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": [value]} if i % 2 else [value]
    return value


def _contains(value: Any, needle: str) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and needle in item:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def test_data_deep_nesting_is_bounded() -> None:
    """A 100-deep structure is handled without unbounded recursion and leaks no secret."""
    r = Redactor([TOKEN])
    result = r.data(_nest(100, f"deep {TOKEN}"))
    assert not _contains(result, TOKEN)


def test_data_nesting_beyond_recursion_limit_is_bounded() -> None:
    """A structure deeper than Python's recursion limit gives no RecursionError and no leak."""
    r = Redactor([TOKEN])
    result = r.data(_nest(5000, f"deep {TOKEN}"))
    assert not _contains(result, TOKEN)


def test_data_cyclic_structure_terminates() -> None:
    """A self-referencing list does not recurse forever."""
    r = Redactor([TOKEN])
    cyclic: list[Any] = [f"x {TOKEN}"]
    cyclic.append(cyclic)
    result = r.data(cyclic)
    assert result[0] == f"x {REDACTED}"


def test_no_secrets_returns_inputs_unchanged() -> None:
    """A Redactor with no secrets returns text and data as they came."""
    r = Redactor([])
    data = {"a": ["b", 1]}
    assert r.text("Bearer abcdefgh") == "Bearer abcdefgh"
    assert r.data(data) is data


def test_regex_metacharacters_matched_literally() -> None:
    """A secret with regex metacharacters is matched as literal text only."""
    r = Redactor(["a+b*c(d)"])
    assert r.text("secret a+b*c(d) here") == f"secret {REDACTED} here"
    assert r.text("aaab c(d) abbbcd") == "aaab c(d) abbbcd"


def test_longest_secret_wins_over_its_prefix() -> None:
    """When one secret contains another, the whole longer one is removed."""
    r = Redactor(["abcdef", "abcdef123456"])
    assert r.text("v=abcdef123456") == f"v={REDACTED}"


def test_redactor_scrubs_dict_keys() -> None:
    """A secret a server echoes back as a key is scrubbed too."""
    redactor = Redactor(["sk-live-canary-123"])
    assert redactor.data({"sk-live-canary-123": 1}) == {REDACTED: 1}


def test_redactor_scrubs_a_secret_cut_before_an_ellipsis() -> None:
    """The start of a secret left where the parser cut a message ("…") is redacted."""
    redactor = Redactor(["sk-live-canary-123"])
    assert redactor.text("token sk-live-ca… (+2 more)") == f"token {REDACTED}… (+2 more)"
    assert redactor.text("ends with sk-live") == f"ends with {REDACTED}"
    assert redactor.text("harmless… text") == "harmless… text"
