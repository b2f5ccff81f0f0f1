"""Keeping secrets out of every error, repr, log line and pickle.

Two defences. Names: query parameters and headers whose names look secret, and a URL's user
part, are shown as `[REDACTED]`. Values: the secrets a request carried are collected (the
credentials of `Authorization`, cookie values, secret header and query values, the URL's user
name and password, the secret fields of a form or JSON body) and scrubbed from any text a
server or a library sent back, in every form such text shows them (stripped, escaped by
`repr()` or JSON, percent-encoded), since servers echo requests in error bodies, and protocol
libraries quote a refused header in their messages, more often than anyone would like. Only
values go: an auth scheme ("Bearer") or a cookie's name stays, so that a message such as "must
start with Bearer" still reads as the server wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx

__all__ = [
    "REDACTED",
    "Redactor",
    "is_secret_field",
    "is_secret_name",
    "read_copy",
    "redact_url",
    "request_repr",
]

REDACTED = "[REDACTED]"

# Secret whatever their value, matched as whole names.
_SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        # Too short to look for inside other names ("design", "author", "barcode"): Azure
        # SAS signatures, Firebase's auth token, OAuth's authorization code.
        "sig",
        "auth",
        "code",
    }
)
# Secret wherever they occur in a name: X-Amz-Credential, client_assertion, X-Session-Id.
_SECRET_WORDS = re.compile(
    r"key|token|secret|password|signature|credential|session|assertion", re.IGNORECASE
)
# A field of a request body is secret when its name is, or ends in, one of these words:
# `client_secret`, `refresh_token`, `apiKey`, `code_verifier`. Stricter than the rule for
# headers and query names, since body fields are many and their values often ordinary words
# echoed in messages: `max_tokens`, `key_name` or `session_project` name no secret.
_SECRET_FIELD_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "signature",
        "credential",
        "credentials",
        "assertion",
        "verifier",
        "jwt",
    }
)
_SECRET_FIELDS = frozenset({"code", "sig", "auth"})
# The words of a field name: snake_case, kebab-case, dotted and camelCase alike.
_FIELD_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
# Values shorter than this are not scrubbed from bodies: "1" or "on" would wreck every message
# and are no secret anyway.
_MIN_SECRET_LENGTH = 6
# The shortest start of a secret, cut off at the end of a capped text, that is still redacted.
_MIN_TAIL_LENGTH = 4
_CUT = "…"
_MAX_DEPTH = 32
# A request body is searched for secret fields only when it is in memory already, and only this
# far: a token request is a few hundred bytes, and every value found costs the scrubbing of
# every text of the error (a bulk import of users with passwords would cost more than it saves).
_MAX_BODY_SCAN = 256 * 1024
_MAX_BODY_SECRETS = 64
_FORM = "application/x-www-form-urlencoded"
# What a read copy of a response keeps of its extensions: plain values that pickle, no
# network stream or pool internals.
_KEPT_EXTENSIONS = ("http_version", "reason_phrase", "request_id")
# What a read copy, holding the decoded and possibly capped body, drops: it has its own
# length, and an encoding left on it would make httpx decode that body again, without a cap.
_BODY_HEADERS = frozenset((b"content-encoding", b"content-length", b"transfer-encoding"))


def is_secret_name(
    name: str, allowed: str | None = None, extra: Collection[str] = frozenset()
) -> bool:
    """Whether a header or query parameter named `name` carries a secret.

    `allowed` names the one header that looks secret but is not: the idempotency key, which
    support needs to see. `extra` holds further names (lower-case, matched whole) that are
    secret too: `ErrorPolicy.redact_names`.
    """
    lowered = name.lower()
    if allowed is not None and lowered == allowed.lower():
        return False
    return lowered in _SECRET_NAMES or lowered in extra or _SECRET_WORDS.search(lowered) is not None


def is_secret_field(name: str, extra: Collection[str] = frozenset()) -> bool:
    """Whether a field of a form or JSON request body named `name` carries a secret."""
    lowered = name.lower()
    if lowered in _SECRET_FIELDS or lowered in extra:
        return True
    words = _FIELD_WORDS.findall(name)
    # An idempotency key is no secret, in a body as in its header.
    return bool(words) and words[-1].lower() in _SECRET_FIELD_WORDS and "idempotency" not in lowered


def redact_url(url: httpx.URL, extra: Collection[str] = frozenset()) -> str:
    """The URL as text, secret query values and the user part redacted, the fragment left out.

    The user part is a secret whole: a password, or a token sent as the user name
    (`https://<token>@host`, as GitHub and git over HTTP document it). The fragment never
    reaches the server and may hold tokens (OAuth's implicit flow).
    """
    if not url.query and not url.userinfo and not url.fragment:
        return str(url)
    userinfo = f"{REDACTED}@" if url.userinfo else ""
    path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
    text = f"{url.scheme}://{userinfo}{url.netloc.decode('ascii', 'replace')}{path}"
    if url.query:
        # Each parameter kept exactly as sent, but for the value of a secret one.
        parts = []
        for part in url.query.decode("ascii", "replace").split("&"):
            name, sep, _ = part.partition("=")
            secret = sep and is_secret_name(unquote_plus(name), extra=extra)
            parts.append(f"{name}={REDACTED}" if secret else part)
        text += "?" + "&".join(parts)
    return text


def request_repr(
    request: httpx.Request, url: str | None = None, extra: Collection[str] = frozenset()
) -> str:
    """`repr(request)` with the URL redacted: `url` where the caller has it redacted already,
    else the request's, redacted with the default names and `extra`.

    httpx's own repr shows the URL whole, password and `api_key=` included.
    """
    shown = redact_url(request.url, extra) if url is None else url
    return f"<{type(request).__name__}({request.method!r}, {shown!r})>"


class Redactor:
    """Scrubs the secret values of one request out of text, structures and httpx objects."""

    __slots__ = ("_allowed", "_extra", "_pattern", "_secrets")

    def __init__(
        self,
        secrets: Iterable[str],
        *,
        parts: Iterable[str] = (),
        allowed_header: str | None = None,
        extra_names: Collection[str] = frozenset(),
    ) -> None:
        """`secrets` are scrubbed whole or cut short; `parts` (the `name="value",` pieces of a
        Digest credential, which start with ordinary words) only whole."""
        values = {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}
        self._secrets = tuple(sorted(values, key=len, reverse=True))
        unique = sorted(values.union(p for p in parts if len(p) >= _MIN_SECRET_LENGTH), key=len)
        # Longest first, so that a secret is replaced whole rather than a shorter one inside it.
        unique.reverse()
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None
        self._allowed = allowed_header
        self._extra = extra_names

    @classmethod
    def for_request(
        cls,
        request: httpx.Request | None,
        allowed_header: str | None,
        extra_names: Collection[str] = frozenset(),
    ) -> Redactor:
        """Collect the secrets `request` carries; `extra_names` are secret names beyond ours."""
        if request is None:
            return cls((), allowed_header=allowed_header, extra_names=extra_names)
        secrets, parts = _request_secrets(request, allowed_header, extra_names)
        return cls(secrets, parts=parts, allowed_header=allowed_header, extra_names=extra_names)

    def text(self, value: str, *, cut: bool = False) -> str:
        """`value` with every known secret replaced, also one cut short where text was cut:
        before a "…" the parser put at a cut, and at the end of a `cut` text (a capped body)."""
        if self._pattern is None:
            return value
        value = self._pattern.sub(REDACTED, value)
        if not cut and _CUT not in value:
            return value
        # A cap can fall inside an echoed secret: the start of a secret left where text was
        # cut is still part of that secret. Nowhere else: "limit is 1000" is no secret's start.
        pieces = value.split(_CUT)
        last = len(pieces) - 1
        return _CUT.join(
            self._trim(piece) if i < last or cut else piece for i, piece in enumerate(pieces)
        )

    def _trim(self, text: str) -> str:
        """`text` with the start of a secret (4 characters or more) that ends it redacted."""
        size = len(text)
        for secret in self._secrets:  # longest first
            head = secret[:_MIN_TAIL_LENGTH]
            # Where a start of `secret` shorter than the whole could begin: found by its head.
            at = text.find(head, max(size - len(secret) + 1, 0))
            while at != -1:
                if secret.startswith(text[at:]):
                    return text[:at] + REDACTED
                at = text.find(head, at + 1)
        return text

    def data(self, value: Any, depth: int = 0) -> Any:
        """A copy of a JSON-like structure with every known secret replaced in its strings."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray)):  # a hook's piece of the raw body
            return self.text(bytes(value).decode("utf-8", "replace"))
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {self._key(k, depth + 1): self.data(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, depth + 1) for v in value]
        return value

    def _key(self, key: Any, depth: int) -> Any:
        """A mapping's key, scrubbed and still hashable: a tuple stays a tuple."""
        if isinstance(key, tuple) and depth < _MAX_DEPTH:
            return tuple(self._key(part, depth + 1) for part in key)
        return self.data(key, depth)

    def url(self, url: httpx.URL) -> str:
        """`url` as text, redacted by name and scrubbed of the request's secret values."""
        return self.text(redact_url(url, self._extra))

    def request(self, request: httpx.Request) -> httpx.Request:
        """A copy of `request` that is safe to pickle: method, redacted URL and headers.

        The body is left out (a form or JSON body may hold a client secret or an assertion),
        and so are the extensions (timeouts, trace hooks), which need not pickle.
        """
        url_type = type(request.url)
        try:
            url = url_type(self.url(request.url))
        except Exception:
            # A secret value that is also part of the host ("[REDACTED].example.com") leaves
            # no URL to parse: the host is no secret, the names are enough there.
            url = url_type(redact_url(request.url, self._extra))
        return type(request)(request.method, url, headers=self._headers(request.headers))

    def response(self, response: httpx.Response, request: httpx.Request | None) -> httpx.Response:
        """A read copy of `response` that is safe to pickle, attached to `request`.

        Secret headers (a `Set-Cookie`) are redacted, and so is every secret of the request
        that the body echoes.
        """
        try:
            content = response.content
        except Exception:  # an unread stream: no body is kept
            content = b""
        headers = self._headers(response.headers)
        return read_copy(type(response), response, headers, self._bytes(content, cut=True), request)

    def _headers(self, headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
        # From the raw bytes, so a header value outside ASCII is kept as it came.
        redacted = []
        for name, value in headers.raw:
            lowered = name.decode("latin-1").lower()
            if is_secret_name(lowered, self._allowed, self._extra):
                text = _redacted_value(lowered, value.decode("latin-1"))
                redacted.append((name, text.encode("latin-1")))
            else:
                redacted.append((name, self._bytes(value)))
        return redacted

    def _bytes(self, value: bytes, *, cut: bool = False) -> bytes:
        # Latin-1 maps each byte to one character and back, so the bytes around a secret are
        # kept exactly, whatever their encoding.
        if self._pattern is None:
            return value
        return self.text(value.decode("latin-1"), cut=cut).encode("latin-1")


def read_copy(
    cls: Callable[..., httpx.Response],
    response: httpx.Response,
    headers: Iterable[tuple[bytes, bytes]],
    content: bytes,
    request: httpx.Request | None,
) -> httpx.Response:
    """A read copy of `response`, made by `cls`: `content` (its decoded body, maybe capped),
    `headers` less those that describe the body as sent, and the extensions that pickle."""
    return cls(
        response.status_code,
        headers=[(name, value) for name, value in headers if name.lower() not in _BODY_HEADERS],
        content=content,
        request=request,
        extensions={k: v for k, v in response.extensions.items() if k in _KEPT_EXTENSIONS},
    )


def _redacted_value(name: str, value: str) -> str:
    """A secret header's value with its secrets redacted and its scheme or names kept."""
    if name in _CREDENTIAL_HEADERS:
        scheme, space, credentials = value.strip().partition(" ")
        return f"{scheme} {REDACTED}" if space and credentials.strip() else REDACTED
    if name == "cookie":
        return "; ".join(_redacted_cookie(part) for part in value.split(";"))
    if name == "set-cookie":
        # Only the first pair is the cookie: Path, Expires, HttpOnly are its attributes.
        cookie, sep, attributes = value.partition(";")
        return _redacted_cookie(cookie) + sep + attributes
    return REDACTED


def _redacted_cookie(part: str) -> str:
    name, sep, _ = part.strip().partition("=")
    return f"{name}={REDACTED}" if sep else REDACTED


def _request_secrets(
    request: httpx.Request, allowed_header: str | None, extra_names: Collection[str]
) -> tuple[list[str], list[str]]:
    """The secret values `request` carries, each in every form it may show up in a server's
    or a library's text, and the parts of a multi-part credential.

    The minimum length applies to a value as sent, stripped: its encoded forms, longer, are
    scrubbed only when the value itself is, and a short value padded out is no secret.
    """
    # Each secret value first, then the encoded forms it was sent in.
    found: list[tuple[str, ...]] = []
    parts: list[str] = []
    for name, value in request.headers.multi_items():
        lowered = name.lower()
        if not is_secret_name(lowered, allowed_header, extra_names):
            continue
        if lowered in _CREDENTIAL_HEADERS:
            # "Bearer sk-…": the credentials, not the scheme, are the secret.
            _, space, credentials = value.strip().partition(" ")
            credentials = credentials.strip()
            if not (space and credentials):  # a bare token, without a scheme
                found.append((value,))
            elif any(c.isspace() for c in credentials):  # Digest's, SigV4's `name=value, …`
                parts.append(credentials)
                parts.extend(credentials.split())
                found.extend(_parameter_secrets(credentials))
            else:
                found.append((credentials,))
        elif lowered in _COOKIE_HEADERS:
            cookies = value.split(";")
            # A Set-Cookie's first pair is the cookie; Path, Expires, HttpOnly are attributes.
            for part in cookies if lowered == "cookie" else cookies[:1]:
                name_or_value, sep, cookie = part.strip().partition("=")
                found.append((cookie if sep else name_or_value,))
        else:
            found.append((value,))
    url = request.url
    if url.userinfo:
        # Echoed decoded, re-encoded, or exactly as the URL had it.
        raw_user, _, raw_password = url.userinfo.decode("ascii", "replace").partition(":")
        found.append((url.username, raw_user, quote(url.username, safe="")))
        found.append((url.password, raw_password, quote(url.password, safe="")))
    if url.query:
        found.extend(_form_secrets(url.query.decode("ascii", "replace"), extra_names))
    found.extend(_body_secrets(request, extra_names))
    # The idempotency key is no secret wherever it also travels (a body field, a header).
    key = request.headers.get(allowed_header) if allowed_header else None
    secrets: set[str] = set()
    for value, *encoded in found:
        if len(value.strip()) >= _MIN_SECRET_LENGTH and value != key:
            for form in (value, *encoded):
                secrets.update(_shown_forms(form))
    return sorted(secrets), parts


def _shown_forms(value: str) -> set[str]:
    """`value` as a text may show it: as sent, stripped (a key read from a file keeps its
    newline), escaped by `repr()` of the str or of its UTF-8 bytes (h11's "Illegal header value
    b'sk-…\\n'"), escaped by JSON, and its UTF-8 bytes read as Latin-1 (a pickled body)."""
    forms: set[str] = set()
    for text in {value, value.strip()}:
        data = text.encode("utf-8", "surrogatepass")
        forms.update(
            (
                text,
                repr(text)[1:-1],
                repr(data)[2:-1],
                json.dumps(text)[1:-1],
                json.dumps(text, ensure_ascii=False)[1:-1],
                data.decode("latin-1"),
            )
        )
    # JSON may escape "/" as "\/" (PHP's encoder does by default).
    forms.update([form.replace("/", "\\/") for form in forms if "/" in form])
    return forms


# The parameters of a `Scheme name=value, …` credential whose values are secret: a SigV4
# `Signature` and `Credential`, Digest's `response` hash and `cnonce`.
_SECRET_PARAMETERS = frozenset({"signature", "credential", "response", "cnonce"})


def _parameter_secrets(credentials: str) -> list[tuple[str, ...]]:
    """The bare values of the secret parameters of a `name=value, …` credential."""
    found: list[tuple[str, ...]] = []
    for parameter in credentials.split(","):
        name, sep, value = parameter.strip().partition("=")
        if sep and name.strip().lower() in _SECRET_PARAMETERS:
            found.append((value.strip().strip('"'),))
    return found


def _form_secrets(
    text: str, extra_names: Collection[str], body: bool = False
) -> list[tuple[str, ...]]:
    """The values of the secret-named fields of a query, or of a form `body`: each decoded,
    then as it stood in the text and re-encoded."""
    secret = is_secret_field if body else is_secret_name
    found: list[tuple[str, ...]] = []
    for part in text.split("&"):
        name, sep, raw = part.partition("=")
        if sep and secret(unquote_plus(name), extra=extra_names):
            value = unquote_plus(raw)
            found.append((value, raw, quote(value, safe="")))
    return found


def _body_secrets(request: httpx.Request, extra_names: Collection[str]) -> list[tuple[str, ...]]:
    """The values of the secret-named fields of a form or JSON body (OAuth sends its
    `client_secret`, `client_assertion`, `code` and `refresh_token` so), if the body is in
    memory: a streaming body is never read here."""
    try:
        content = request.content
    except Exception:  # httpx's RequestNotRead: a stream nobody read
        return []
    if not isinstance(content, bytes) or not content or len(content) > _MAX_BODY_SCAN:
        return []
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media == _FORM:
        found = _form_secrets(content.decode("ascii", "replace"), extra_names, body=True)
    elif media == "application/json" or media.endswith("+json"):
        try:
            data = json.loads(content)
        except (ValueError, RecursionError):  # not JSON after all, or nested past all sense
            return []
        found = []
        _json_secrets(data, extra_names, found)
    else:
        return []
    return found[:_MAX_BODY_SECRETS]


def _json_secrets(
    value: Any,
    extra_names: Collection[str],
    found: list[tuple[str, ...]],
    depth: int = 0,
    secret: bool = False,
) -> None:
    """Add to `found` every value under a secret-named key of a JSON document, at any depth
    up to the bound: each string, and each number as its text."""
    if depth >= _MAX_DEPTH or len(found) >= _MAX_BODY_SECRETS:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            named = secret or is_secret_field(str(key), extra_names)
            _json_secrets(item, extra_names, found, depth + 1, named)
    elif isinstance(value, list):
        for item in value:
            _json_secrets(item, extra_names, found, depth + 1, secret)
    elif secret and isinstance(value, str):
        found.append((value,))
    elif secret and isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append((json.dumps(value),))
