"""Tests for secret redaction in ``httpx_resilience._redact``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from httpx_resilience._redact import REDACTED, Redactor, is_secret_name, redact_url, request_repr

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


def test_redact_url_userinfo_with_password_redacted_whole() -> None:
    """A user name and password show as one [REDACTED]: neither is shown."""
    text = redact_url(httpx.URL("https://alice:hunter2pw@api.example.com/v1"))
    assert "hunter2pw" not in text
    assert text == f"https://{REDACTED}@api.example.com/v1"


def test_redact_url_username_without_password_redacted() -> None:
    """A user part alone (a token, as GitHub and git over HTTP use it) is redacted."""
    assert redact_url(httpx.URL("https://ghp_4Xk9Qm2Lw8Rt@api.example.com/v1")) == (
        f"https://{REDACTED}@api.example.com/v1"
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
    assert text == f"https://{REDACTED}@api.example.com:8443/a%20b/c%2Fd?token={REDACTED}"


def test_redact_url_percent_encoded_secret_name() -> None:
    """A secret parameter name written percent-encoded is still recognised."""
    text = redact_url(httpx.URL("https://api.example.com/?api%5Fkey=s3cr3tvalue"))
    assert "s3cr3tvalue" not in text


# --- Redactor.for_request -----------------------------------------------------


def test_bearer_token_scrubbed_and_scheme_kept() -> None:
    """The token of `Bearer <tok>` is removed from text, echoed with its scheme or alone."""
    r = redactor_for(headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.text(f"got header Bearer {TOKEN}") == f"got header Bearer {REDACTED}"
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


def test_data_scrubs_bytes_as_text() -> None:
    """Bytes (a hook's raw body piece) are scrubbed as the text they hold, not passed through."""
    r = Redactor([TOKEN])
    assert r.data({"raw": f"token {TOKEN}".encode()}) == {"raw": f"token {REDACTED}"}
    assert r.data([bytearray(TOKEN.encode())]) == [REDACTED]


def test_data_keeps_tuple_keys_hashable_and_scrubbed() -> None:
    """A mapping with a tuple key stays a mapping: the key stays a (scrubbed) tuple."""
    r = Redactor([TOKEN])
    assert r.data({("loc", TOKEN): 1, 7: "x"}) == {("loc", REDACTED): 1, 7: "x"}


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
    assert redactor.text("ends with sk-live", cut=True) == f"ends with {REDACTED}"
    assert redactor.text("harmless… text") == "harmless… text"


def test_a_secrets_start_is_redacted_only_where_text_was_cut() -> None:
    """Text that was not cut keeps an ending that merely looks like a secret's start: a
    server's "limit is 1000" when the request carried 100000 somewhere secret."""
    redactor = Redactor(["100000", "sk-live-canary-123"])
    assert redactor.text("Organisation limit is 1000") == "Organisation limit is 1000"
    assert redactor.text("ends with sk-live") == "ends with sk-live"
    assert redactor.text("ends with sk-live", cut=True) == f"ends with {REDACTED}"
    assert redactor.text("limit is 1000", cut=True) == f"limit is {REDACTED}"


# --- Signed-URL, OAuth and session names (issue 12, item 8) ---------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "sig",
        "SIG",
        "X-Amz-Credential",
        "X-Goog-Credential",
        "code",
        "client_assertion",
        "client_assertion_type",
        "auth",
        "Session",
        "X-Session-Id",
        "sessionid",
    ],
)
def test_signed_url_oauth_and_session_names_are_secret(name: str) -> None:
    """Azure sig, AWS/Google credentials, OAuth code and assertion, Firebase auth, sessions."""
    assert is_secret_name(name) is True


@pytest.mark.parametrize("name", ["signal", "design", "author", "authors", "zipcode", "codec"])
def test_short_names_are_secret_only_when_whole(name: str) -> None:
    """sig, auth and code are secret as whole names, not inside ordinary ones."""
    assert is_secret_name(name) is False


def test_extra_names_are_secret() -> None:
    """Names given as extra (lower-case) are secret, matched whole in any case."""
    extra = frozenset({"x-tenant-pin", "pin"})
    assert is_secret_name("X-Tenant-Pin", extra=extra) is True
    assert is_secret_name("PIN", extra=extra) is True
    assert is_secret_name("pinned", extra=extra) is False
    assert is_secret_name("X-Tenant-Pin") is False


def test_allowed_name_wins_over_extra_names() -> None:
    """The idempotency key header stays visible even when named as extra."""
    extra = frozenset({"idempotency-key"})
    assert is_secret_name("Idempotency-Key", IDEMPOTENCY, extra) is False


@pytest.mark.parametrize(
    "param", ["sig", "X-Amz-Credential", "X-Goog-Credential", "code", "client_assertion", "auth"]
)
def test_redact_url_signed_and_oauth_params(param: str) -> None:
    """Signed-URL and OAuth parameters have their values redacted in the URL."""
    text = redact_url(httpx.URL(f"https://h.example/blob?sv=2021&{param}=s3cr3tvalue&se=1"))
    assert text == f"https://h.example/blob?sv=2021&{param}={REDACTED}&se=1"


def test_redact_url_extra_names() -> None:
    """Extra names are redacted in the URL as well as the defaults."""
    url = httpx.URL("https://h.example/?pin=12345678&sig=abcdefgh&page=2")
    text = redact_url(url, frozenset({"pin"}))
    assert text == f"https://h.example/?pin={REDACTED}&sig={REDACTED}&page=2"


def test_extra_name_values_are_scrubbed() -> None:
    """A value sent under an extra name, header or query, is scrubbed from text."""
    request = httpx.Request(
        "GET", "https://h.example/?pin=98765432", headers={"X-Tenant-Pin": "tp_123456789"}
    )
    r = Redactor.for_request(request, IDEMPOTENCY, frozenset({"pin", "x-tenant-pin"}))
    assert r.text("pin 98765432 tenant tp_123456789") == f"pin {REDACTED} tenant {REDACTED}"


def test_extra_name_values_are_kept_without_extra_names() -> None:
    """Without the extra names, the same values are ordinary text."""
    request = httpx.Request("GET", "https://h.example/?pin=98765432")
    assert Redactor.for_request(request, IDEMPOTENCY).text("pin 98765432") == "pin 98765432"


def test_redactor_url_uses_extra_names_and_values() -> None:
    """Redactor.url redacts by the extra names and scrubs the request's secret values."""
    request = httpx.Request(
        "GET",
        "https://h.example/files/tok_abcdef123?pin=1234&x=tok_abcdef123&q=a",
        headers={"X-Api-Key": "tok_abcdef123"},
    )
    r = Redactor.for_request(request, IDEMPOTENCY, frozenset({"pin"}))
    assert r.url(request.url) == (
        f"https://h.example/files/{REDACTED}?pin={REDACTED}&x={REDACTED}&q=a"
    )


# --- Only values are secret: schemes and ordinary words stay (item 9) ------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (f"Bearer {TOKEN}", "Authorization header must start with Bearer"),
        (f"Basic {TOKEN}", "this endpoint accepts only Basic"),
        (f"Bearer {TOKEN}", "expected Bearer… got something else"),
        (f"Token {TOKEN}", "unknown scheme Token"),
    ],
)
def test_auth_scheme_at_the_end_of_text_is_kept(authorization: str, message: str) -> None:
    """A message ending with the scheme the request used keeps it: the scheme is no secret."""
    r = redactor_for(headers={"Authorization": authorization})
    assert r.text(message) == message


def test_cookie_name_at_the_end_of_text_is_kept() -> None:
    """A message ending with a cookie's name keeps it: only its value is secret."""
    r = redactor_for(headers={"Cookie": "session=abcdef123456"})
    assert r.text("invalid session") == "invalid session"
    assert r.text("session=abcdef123456 expired") == f"session={REDACTED} expired"


def test_set_cookie_attributes_are_not_secret() -> None:
    """In a Set-Cookie only the cookie's value is secret, not Path or HttpOnly."""
    r = redactor_for(headers={"Set-Cookie": "sid=abcdef123456; Path=/api; HttpOnly"})
    text = "needs HttpOnly and Path=/api"
    assert r.text(text) == text
    assert r.text("sid abcdef123456") == f"sid {REDACTED}"


def test_bare_token_without_scheme_is_scrubbed() -> None:
    """An Authorization value without a scheme is a secret as a whole."""
    r = redactor_for(headers={"Authorization": TOKEN})
    assert r.text(f"bad {TOKEN}") == f"bad {REDACTED}"


def test_digest_credentials_scrubbed() -> None:
    """The parameters of a Digest (or other multi-part) credential are scrubbed one by one."""
    value = 'Digest username="alice", response="6629fae49393a05397450978507c4ef1"'
    r = redactor_for(headers={"Authorization": value})
    assert "6629fae4" not in r.text('response="6629fae49393a05397450978507c4ef1", ok')


def test_digest_parameter_names_at_the_end_of_text_are_kept() -> None:
    """A message ending with the start of a Digest parameter ("user") keeps it."""
    value = 'Digest username="alice", response="6629fae49393a05397450978507c4ef1"'
    r = redactor_for(headers={"Authorization": value})
    assert r.text("unknown user") == "unknown user"
    assert r.text("bad response") == "bad response"


def test_min_length_applies_to_the_value_not_its_encoding() -> None:
    """A short query secret is not scrubbed in its percent-encoded form either."""
    r = redactor_for(url="https://api.example.com/v1?token=a%2Fb%2Fc&api_key=zz")
    text = "saw a%2Fb%2Fc and a/b/c"
    assert r.text(text) == text


@pytest.mark.parametrize("param", ["code", "auth", "sig"])
def test_short_values_of_short_names_are_kept(param: str) -> None:
    """`code=US`, `auth=1`, `sig=on`: values under six characters eat no word of a message."""
    r = redactor_for(url=f"https://api.example.com/v1?{param}=US1")
    assert r.text("US1 is not a valid region") == "US1 is not a valid region"


def test_url_password_scrubbed_percent_encoded() -> None:
    """A URL password is scrubbed also as the percent-encoded text a server may echo."""
    r = redactor_for(url="https://alice:p%40ss%2Fw0rd@api.example.com/v1")
    assert r.text("saw p%40ss%2Fw0rd and p@ss/w0rd") == f"saw {REDACTED} and {REDACTED}"


@pytest.mark.parametrize(("size", "redacted"), [(5, True), (4, True), (3, False)])
def test_secret_tail_length(size: int, redacted: bool) -> None:
    """The start of a secret cut off at the end of text is redacted from 4 characters on."""
    r = Redactor(["sk-live-canary-123"])
    text = "cut at " + "sk-live-canary-123"[:size]
    assert (r.text(text, cut=True) == f"cut at {REDACTED}") is redacted


def test_whole_secret_at_the_end_is_redacted() -> None:
    """A secret ending the text whole is redacted (the tail rule's upper bound)."""
    r = Redactor(["sk-live-canary-123"])
    assert r.text("ends sk-live-canary-123") == f"ends {REDACTED}"


# --- Redacted copies of requests and responses, for pickles (item 10) ------------------------


def _secret_request() -> httpx.Request:
    return httpx.Request(
        "POST",
        "https://alice:pw_s3cr3t_99@api.example.com/v1/x?api_key=qk_abcdef9876&page=2",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": "session=abcdef123456; theme=dark",
            IDEMPOTENCY: "idem-1234567890",
            "X-Echo": f"carries {TOKEN}",
            "User-Agent": "sdk/1.0",
        },
        content=b"client_secret=cs_0987654321",
    )


def test_redacted_request_headers() -> None:
    """A redacted copy keeps schemes, cookie names and the idempotency key, not the secrets."""
    copy = Redactor.for_request(_secret_request(), IDEMPOTENCY).request(_secret_request())
    assert copy.headers["authorization"] == f"Bearer {REDACTED}"
    assert copy.headers["cookie"] == f"session={REDACTED}; theme={REDACTED}"
    assert copy.headers[IDEMPOTENCY] == "idem-1234567890"
    assert copy.headers["x-echo"] == f"carries {REDACTED}"
    assert copy.headers["user-agent"] == "sdk/1.0"


def test_redacted_request_url_method_and_no_body() -> None:
    """A redacted copy has the method and redacted URL, and leaves the body out."""
    request = _secret_request()
    copy = Redactor.for_request(request, IDEMPOTENCY).request(request)
    assert copy.method == "POST"
    assert copy.url.host == "api.example.com"
    assert copy.url.path == "/v1/x"
    assert copy.url.params["api_key"] == REDACTED
    assert copy.url.params["page"] == "2"
    assert copy.url.username == REDACTED
    assert copy.url.password == ""
    assert copy.content == b""


def test_redacted_request_extra_names() -> None:
    """Headers named by the extra names are redacted in the copy."""
    request = httpx.Request("GET", "https://h.example/", headers={"X-Tenant-Pin": "12345678"})
    copy = Redactor.for_request(request, IDEMPOTENCY, frozenset({"x-tenant-pin"})).request(request)
    assert copy.headers["x-tenant-pin"] == REDACTED


def test_redacted_request_keeps_non_ascii_header_bytes() -> None:
    """A header value outside ASCII is copied byte for byte."""
    request = httpx.Request("GET", "https://h.example/", headers=[(b"X-Name", "Zoë".encode())])
    copy = Redactor.for_request(request, IDEMPOTENCY).request(request)
    assert dict(copy.headers.raw)[b"X-Name"] == "Zoë".encode()


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz", f"Basic {REDACTED}"),
        ("Authorization", TOKEN, REDACTED),
        ("X-Api-Key", "k", REDACTED),
        ("Set-Cookie", "sid=abc; Path=/; HttpOnly", f"sid={REDACTED}; Path=/; HttpOnly"),
        ("Cookie", "legacyvalue", REDACTED),
    ],
)
def test_redacted_header_values(name: str, value: str, shown: str) -> None:
    """Each kind of secret header shows only what is not secret, however short the secret."""
    request = httpx.Request("GET", "https://h.example/", headers={name: value})
    copy = Redactor.for_request(request, IDEMPOTENCY).request(request)
    assert copy.headers[name] == shown


def test_redacted_response() -> None:
    """A redacted response copy scrubs echoed secrets and Set-Cookie, keeping everything else."""
    request = _secret_request()
    redactor = Redactor.for_request(request, IDEMPOTENCY)
    body = f'{{"echo": "Bearer {TOKEN}", "name": "Zoë"}}'.encode()
    response = httpx.Response(
        401,
        headers={"Set-Cookie": "sid=zz_1234567; Path=/", "X-Request-Id": "req_1"},
        content=body,
        request=request,
        extensions={"request_id": "req_1", "network_stream": object()},
    )
    copy = redactor.response(response, redactor.request(request))
    assert copy.status_code == 401
    assert copy.json() == {"echo": f"Bearer {REDACTED}", "name": "Zoë"}
    assert copy.headers["set-cookie"] == f"sid={REDACTED}; Path=/"
    assert copy.headers["x-request-id"] == "req_1"
    assert copy.extensions == {"request_id": "req_1"}
    assert copy.request.headers["authorization"] == f"Bearer {REDACTED}"


def test_redacted_response_of_an_unread_stream_has_no_body() -> None:
    """An unread streaming response is copied without its body, and nothing is read."""
    response = httpx.Response(503, stream=httpx.ByteStream(b"never read"))
    copy = Redactor([]).response(response, None)
    assert copy.status_code == 503
    assert copy.content == b""
    assert not response.is_stream_consumed


def test_redacted_response_drops_encoding_headers() -> None:
    """The copy holds the decoded body: no Content-Encoding, its own Content-Length."""
    response = httpx.Response(
        500, headers={"Content-Encoding": "identity", "Content-Length": "99"}, content=b"oops"
    )
    copy = Redactor([]).response(response, None)
    assert "content-encoding" not in copy.headers
    assert copy.headers["content-length"] == "4"
    assert copy.content == b"oops"


def test_non_ascii_secret_scrubbed_from_bytes() -> None:
    """A secret outside ASCII is scrubbed from the UTF-8 bytes of a copied body."""
    request = httpx.Request("GET", "https://h.example/?token=gehe%C3%AFm-w%C3%B6rt")
    redactor = Redactor.for_request(request, IDEMPOTENCY)
    response = httpx.Response(400, content="saw geheïm-wört".encode())
    assert redactor.response(response, None).content == f"saw {REDACTED}".encode()


# --- Event reprs (item 11) ---------------------------------------------------------------------


def test_request_repr_redacts_the_url() -> None:
    """request_repr shows the method and the redacted URL, like httpx's repr otherwise."""
    request = httpx.Request("GET", "https://u:pw_s3cr3t@h.example/x?api_key=abc123456&q=1")
    assert request_repr(request) == (
        f"<Request('GET', 'https://{REDACTED}@h.example/x?api_key={REDACTED}&q=1')>"
    )


def test_request_repr_uses_the_given_url() -> None:
    """A URL redacted already (the error's) is shown as given."""
    request = httpx.Request("GET", "https://h.example/x?pin=1234")
    assert request_repr(request, "https://h.example/x?pin=[gone]") == (
        "<Request('GET', 'https://h.example/x?pin=[gone]')>"
    )


def test_redacted_request_when_a_secret_is_part_of_the_host() -> None:
    """A secret value that also names the host still gives a copy, redacted by name."""
    request = httpx.Request(
        "GET", "https://tenant42.example.com/?api_key=tenant42", headers={"X-Api-Key": "tenant42"}
    )
    copy = Redactor.for_request(request, IDEMPOTENCY).request(request)
    assert copy.url.host == "tenant42.example.com"
    assert copy.url.params["api_key"] == REDACTED
    assert copy.headers["x-api-key"] == REDACTED


# --- Secrets in the forms an exception message shows them --------------------------------------


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        # A key read from a file keeps its newline; h11 refuses it with the bytes' repr.
        (b"sk-live-9f8e7d6c\n", "Illegal header value b'sk-live-9f8e7d6c\\n'"),
        (b"sk-live-9f8e7d6c\r\n", "value 'sk-live-9f8e7d6c\\r\\n' refused"),
        (b" sk-live-9f8e7d6c\t", "sent sk-live-9f8e7d6c today"),
        (b"sk-\x01live-9f8e7d6c", "Illegal header value b'sk-\\x01live-9f8e7d6c'"),
        ("sk-wört-9f8e7d6c".encode(), "value b'sk-w\\xc3\\xb6rt-9f8e7d6c'"),
        ("sk-wört-9f8e7d6c".encode(), '{"key": "sk-w\\u00f6rt-9f8e7d6c"}'),
        (b'sk-"q"-9f8e7d6c', '{"key": "sk-\\"q\\"-9f8e7d6c"}'),
        # JSON.stringify escapes quotes but leaves non-ASCII as it is.
        ('sk-"wört"-9f8e7d6c'.encode(), '{"key": "sk-\\"wört\\"-9f8e7d6c"}'),
    ],
    ids=[
        "bytes-repr",
        "str-repr",
        "stripped",
        "control",
        "utf8-repr",
        "json-unicode",
        "json",
        "json-utf8",
    ],
)
def test_secret_scrubbed_in_its_escaped_forms(sent: bytes, echoed: str) -> None:
    """A secret value is scrubbed stripped and as repr() or JSON escape it, not only as sent."""
    request = httpx.Request("GET", "https://h.example/", headers=[(b"X-Api-Key", sent)])
    out = Redactor.for_request(request, IDEMPOTENCY).text(echoed)
    assert "9f8e7d6c" not in out
    assert REDACTED in out


def test_min_length_applies_to_the_stripped_value() -> None:
    """A short value padded with white space to six characters is no secret to scrub."""
    r = redactor_for(headers={"X-Api-Key": "ab12\n\n"})
    assert r.text("page ab12 of 3") == "page ab12 of 3"


# --- The URL's user part ---------------------------------------------------------------------

USER_TOKEN = "ghp_4Xk9Qm2Lw8Rt5Zp1Vb7N"


def test_url_username_token_scrubbed() -> None:
    """A token sent as the URL's user part is scrubbed from text the server sent."""
    r = redactor_for(url=f"https://{USER_TOKEN}@api.example.com/v1")
    assert r.text(f"token {USER_TOKEN} revoked") == f"token {REDACTED} revoked"


def test_url_username_scrubbed_percent_encoded() -> None:
    """A user part is scrubbed decoded and as the percent-encoded text a server may echo."""
    r = redactor_for(url="https://tok%40en%2F12345@api.example.com/v1")
    assert r.text("saw tok%40en%2F12345 and tok@en/12345") == f"saw {REDACTED} and {REDACTED}"


def test_short_url_username_not_scrubbed() -> None:
    """A user name under six characters is redacted from the URL but eats no word of text."""
    r = redactor_for(url="https://alice:pw_s3cr3t_99@api.example.com/v1")
    assert r.text("unknown user alice") == "unknown user alice"
    assert r.url(httpx.URL("https://alice:pw_s3cr3t_99@api.example.com/v1")) == (
        f"https://{REDACTED}@api.example.com/v1"
    )


def test_redacted_request_of_a_username_token() -> None:
    """The pickled copy of a request keeps no user part token."""
    request = httpx.Request("GET", f"https://{USER_TOKEN}@api.example.com/v1")
    copy = Redactor.for_request(request, IDEMPOTENCY).request(request)
    assert USER_TOKEN not in str(copy.url)
    assert copy.url.username == REDACTED
    assert copy.url.host == "api.example.com"


# --- Secret fields of the request body -------------------------------------------------------

BODY_SECRET = "cs_9f8e7d6c5b4a3f2e"
OAUTH_FIELDS = ["client_secret", "client_assertion", "code", "refresh_token", "password"]


def _body_redactor(request: httpx.Request, extra: frozenset[str] = frozenset()) -> Redactor:
    return Redactor.for_request(request, IDEMPOTENCY, extra)


@pytest.mark.parametrize("name", OAUTH_FIELDS)
def test_form_body_secret_field_scrubbed(name: str) -> None:
    """The value of a secret-named field of a form body is scrubbed where echoed."""
    data = {"grant_type": "client_credentials", "client_id": "app-123456", name: BODY_SECRET}
    r = _body_redactor(httpx.Request("POST", "https://h.example/token", data=data))
    assert r.text(f"bad {name}: {BODY_SECRET}") == f"bad {name}: {REDACTED}"


def test_form_body_ordinary_fields_kept() -> None:
    """Fields not named like secrets keep their values: grant types and client ids."""
    data = {"grant_type": "client_credentials", "client_id": "app-123456", "code": BODY_SECRET}
    r = _body_redactor(httpx.Request("POST", "https://h.example/token", data=data))
    text = "client app-123456 may not use client_credentials"
    assert r.text(text) == text


def test_form_body_secret_scrubbed_as_sent_and_decoded() -> None:
    """A form value is scrubbed decoded and percent-encoded, as the body carried it."""
    assertion = "eyJhbGciOi.J9+eyJz/dWIi=="
    request = httpx.Request("POST", "https://h.example/", data={"client_assertion": assertion})
    sent = request.content.decode().partition("=")[2]
    assert sent != assertion  # the body carries it encoded
    r = _body_redactor(request)
    assert r.text(f"{sent} / {assertion}") == f"{REDACTED} / {REDACTED}"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/merge-patch+json; charset=utf-8"]
)
def test_json_body_secret_fields_scrubbed_at_any_depth(content_type: str) -> None:
    """Secret-named keys of a JSON body are found nested in objects and lists."""
    body = {
        "name": "ordinary-name",
        "refresh_token": "rt_1234567890",
        "data": {"items": [{"client": {"client_secret": BODY_SECRET}}]},
    }
    request = httpx.Request(
        "POST", "https://h.example/", json=body, headers={"Content-Type": content_type}
    )
    r = _body_redactor(request)
    echoed = f"ordinary-name rt_1234567890 {BODY_SECRET}"
    assert r.text(echoed) == f"ordinary-name {REDACTED} {REDACTED}"


def test_json_body_secret_key_over_a_structure() -> None:
    """Every value under a secret-named key is secret, numbers as their text too."""
    body = {"credentials": {"user": "svc-account", "pin": 12345678, "on": True}}
    r = _body_redactor(httpx.Request("POST", "https://h.example/", json=body))
    assert r.text("svc-account 12345678 True") == f"{REDACTED} {REDACTED} True"


def test_json_body_nested_too_deep_is_bounded() -> None:
    """A body nested past any sane depth is searched only to the bound, and never crashes."""
    deep: Any = {"client_secret": BODY_SECRET}
    for _ in range(64):
        deep = {"a": deep}
    r = _body_redactor(httpx.Request("POST", "https://h.example/", json=deep))
    assert r.text(BODY_SECRET) == BODY_SECRET
    bomb = b"[" * 100_000 + b"]" * 100_000
    headers = {"Content-Type": "application/json", "X-Api-Key": TOKEN}
    request = httpx.Request("POST", "https://h.example/", content=bomb, headers=headers)
    assert _body_redactor(request).text(TOKEN) == REDACTED


def test_json_body_secret_within_the_depth_bound() -> None:
    """A secret 20 levels down is still found."""
    deep: Any = {"client_secret": BODY_SECRET}
    for _ in range(10):
        deep = {"a": [deep]}
    r = _body_redactor(httpx.Request("POST", "https://h.example/", json=deep))
    assert r.text(BODY_SECRET) == REDACTED


def test_invalid_json_body_is_ignored() -> None:
    """A body that claims JSON but is not still leaves the header secrets collected."""
    headers = {"Content-Type": "application/json", "X-Api-Key": TOKEN}
    request = httpx.Request("POST", "https://h.example/", content=b"{not json", headers=headers)
    assert _body_redactor(request).text(f"key {TOKEN}") == f"key {REDACTED}"


def test_extra_names_apply_to_body_fields() -> None:
    """ErrorPolicy.redact_names name body fields too."""
    request = httpx.Request("POST", "https://h.example/", data={"pin": "84213579"})
    assert _body_redactor(request).text("pin 84213579") == "pin 84213579"
    assert _body_redactor(request, frozenset({"pin"})).text("pin 84213579") == f"pin {REDACTED}"


def test_streaming_body_is_never_read() -> None:
    """A body not in memory (a generator) is not read to look for secrets."""
    pulled: list[bytes] = []

    def body() -> Any:
        pulled.append(b"client_secret=" + BODY_SECRET.encode())
        yield pulled[-1]

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = httpx.Request("POST", "https://h.example/", content=body(), headers=headers)
    r = _body_redactor(request)
    assert pulled == []
    assert r.text(BODY_SECRET) == BODY_SECRET


def test_body_read_by_the_caller_is_searched() -> None:
    """A streamed body the caller read already is in memory, and is searched."""
    stream = httpx.ByteStream(b"client_secret=" + BODY_SECRET.encode())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = httpx.Request("POST", "https://h.example/", stream=stream, headers=headers)
    assert _body_redactor(request).text(BODY_SECRET) == BODY_SECRET
    request.read()
    assert _body_redactor(request).text(BODY_SECRET) == REDACTED


def test_body_secret_fields_are_bounded() -> None:
    """Only the first 64 secret fields of a body are collected: each costs every scrub."""
    data = {f"field{i}_token": f"value-{i:04d}-xyz" for i in range(65)}
    r = _body_redactor(httpx.Request("POST", "https://h.example/", data=data))
    assert r.text("value-0063-xyz") == REDACTED
    assert r.text("value-0064-xyz") == "value-0064-xyz"


@pytest.mark.parametrize(("size", "searched"), [(256 * 1024, True), (256 * 1024 + 1, False)])
def test_body_searched_up_to_256_kib(size: int, searched: bool) -> None:
    """A body up to 256 KiB is searched for secret fields; a larger one is not."""
    head = f"client_secret={BODY_SECRET}&pad="
    body = (head + "x" * (size - len(head))).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = httpx.Request("POST", "https://h.example/", content=body, headers=headers)
    assert (_body_redactor(request).text(BODY_SECRET) == REDACTED) is searched


@pytest.mark.parametrize(
    "name",
    ["api_key", "apiKey", "private-key", "access_token", "new_password", "code_verifier", "jwt"],
)
def test_body_fields_ending_in_a_secret_word_are_secret(name: str) -> None:
    """A body field is secret when its name is, or ends in, a secret word (any case or style)."""
    r = _body_redactor(httpx.Request("POST", "https://h.example/", json={name: BODY_SECRET}))
    assert r.text(f"saw {BODY_SECRET}") == f"saw {REDACTED}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tokens", 100000),
        ("max_tokens", "100000"),
        ("key_name", "billing-service"),
        ("session_project", "acme-prod"),
        ("token_type", "Bearer-ish"),
        ("keywords", "red-shoes"),
    ],
)
def test_body_fields_that_only_mention_a_secret_word_are_kept(name: str, value: object) -> None:
    """`max_tokens`, `key_name`, `session_project`: names that mention a secret word without
    naming a secret keep their values, in messages and in the URL path alike."""
    body = {name: value, "model": "m-1"}
    request = httpx.Request("PATCH", f"https://h.example/v1/things/{value}", json=body)
    r = _body_redactor(request)
    message = f"{name}: {value} > 64000; limit is 1000"
    assert r.text(message) == message
    assert r.url(request.url) == f"https://h.example/v1/things/{value}"


def test_idempotency_key_in_the_body_stays_visible() -> None:
    """An idempotency key a body carries (Square's `idempotency_key`) is no secret, like the
    header it also travels in."""
    key = "7c1e0f3a-5b2d-4e8f-9a6b-1d2c3e4f5a6b"
    request = httpx.Request(
        "POST",
        "https://h.example/v2/payments",
        json={"idempotency_key": key, "amount": 100},
        headers={IDEMPOTENCY: key},
    )
    r = _body_redactor(request)
    assert r.text(f"idempotency_key {key} was already used") == (
        f"idempotency_key {key} was already used"
    )


def test_sigv4_signature_and_credential_are_scrubbed_bare() -> None:
    """An AWS SigV4 `Authorization` (parameters after the scheme): the signature and the
    credential a server echoes bare are scrubbed, and the parameter names stay."""
    signature = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
    credential = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
    value = (
        f"AWS4-HMAC-SHA256 Credential={credential}, "
        f"SignedHeaders=host;range;x-amz-date, Signature={signature}"
    )
    r = redactor_for(headers={"Authorization": value})
    echoed = f"<SignatureProvided>{signature}</SignatureProvided><Cred>{credential}</Cred>"
    assert r.text(echoed) == (
        f"<SignatureProvided>{REDACTED}</SignatureProvided><Cred>{REDACTED}</Cred>"
    )
    assert r.text("SignedHeaders=host;range;x-amz-date") == "SignedHeaders=host;range;x-amz-date"


def test_secret_scrubbed_where_json_escapes_its_slashes() -> None:
    """A secret with a "/" echoed by a JSON encoder that writes "\\/" (PHP's default)."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    r = _body_redactor(httpx.Request("POST", "https://h.example/", data={"client_secret": secret}))
    echoed = '{"error": "bad secret ' + secret.replace("/", "\\/") + '"}'
    assert r.text(echoed) == '{"error": "bad secret ' + REDACTED + '"}'
