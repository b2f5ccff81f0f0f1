"""Turn the body of an HTTP error response into a message, a code and structured extras.

The parser understands RFC 9457 problem details, the common JSON error shapes
(FastAPI, OpenAI-style ``{"error": {...}}``, OAuth, ``{"message": ...}``,
JSON:API, GraphQL and Rails ``errors``), HTML error pages and plain text.
It is pure: standard library only, no I/O, and it never raises, because it runs
while an error is already being reported and must not hide that error.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

__all__ = ["ParsedBody", "decode_text", "field_error", "parse_error_body"]

_MESSAGE_LIMIT = 1000
_TEXT_LIMIT = 500
_HTML_LIMIT = 200
_SUMMARY_ITEMS = 3
_ELLIPSIS = "…"
_BOM = "\ufeff"
_PROBLEM_JSON = "application/problem+json"
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})
_ERROR_OBJECT_MEMBERS = frozenset({"message", "type", "code"})

# Control characters count as separators so that a hostile body cannot smuggle
# terminal escapes or NULs into log lines built from the message.
_WORD = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")
# Every pattern below stops at the next "<" so that a body full of unclosed
# tags is still scanned in linear time.
_HTML_START = re.compile(r"<!doctype|<html", re.IGNORECASE)
_TITLE_OPEN = re.compile(r"<title\b[^<>]*>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.IGNORECASE)
_BLOCK_OPEN = re.compile(r"<(script|style)\b|<!--", re.IGNORECASE)
_BLOCK_CLOSE = {
    "script": re.compile(r"</script\s*>", re.IGNORECASE),
    "style": re.compile(r"</style\s*>", re.IGNORECASE),
    "<!--": re.compile(r"-->"),
}
_TAG = re.compile(r"<[^<>]*>")


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """What an error body says, in a shape that does not depend on the API."""

    message: str | None = None
    code: str | None = None
    details: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None


def decode_text(body: bytes, content_type: str | None) -> str:
    """Decode ``body`` with the charset of ``content_type`` if usable, else UTF-8.

    Undecodable bytes become U+FFFD; this never raises.
    """
    charset = _charset(content_type)
    if charset:
        try:
            return body.decode(charset, "replace")
        except Exception:
            pass  # unknown, non-text or strict-only codecs: UTF-8 is the better guess
    return body.decode("utf-8", "replace")


def parse_error_body(
    body: bytes, content_type: str | None, *, text: str | None = None
) -> ParsedBody:
    """Extract message, code, details and field errors from an error body; never raises.

    `text` is the body already decoded with `decode_text`, when the caller has it: a large
    body is then not decoded twice.
    """
    try:
        return _parse(body, content_type, text)
    except Exception:
        return ParsedBody()


def _parse(body: bytes, content_type: str | None, text: str | None) -> ParsedBody:
    if not body:
        return ParsedBody()
    if text is None:
        text = decode_text(body, content_type)
    text = text.removeprefix(_BOM).strip()
    if not text:
        return ParsedBody()
    media = _media_type(content_type)
    if "json" in media or text.startswith(("{", "[")):
        parsed = _parse_json(text, media)
        if parsed is not None:
            return parsed
    if media == "text/html" or _HTML_START.match(text):
        return ParsedBody(message=_html_text(text))
    return ParsedBody(message=_clean(text, _TEXT_LIMIT))


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").strip() or None
    return None


def _parse_json(text: str, media: str) -> ParsedBody | None:
    """Interpret ``text`` as JSON, or return None so the caller treats it as text."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    try:
        if isinstance(value, dict):
            if media == _PROBLEM_JSON:
                return _problem(value)
            return _json_object(value)
        if value is None:
            return ParsedBody()
        if isinstance(value, str):
            return ParsedBody(message=_clean(value, _MESSAGE_LIMIT))
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return ParsedBody(message=_clean(compact, _MESSAGE_LIMIT))
    except Exception:
        # A shape the rules did not foresee is better shown as text than lost.
        return None


def _problem(obj: dict[str, Any]) -> ParsedBody:
    message = _clean_str(obj.get("detail")) or _clean_str(obj.get("title"))
    kind = obj.get("type")
    code = kind if isinstance(kind, str) and kind.strip().lower() != "about:blank" else None
    details = {key: value for key, value in obj.items() if key not in _PROBLEM_MEMBERS}
    errors = _errors_from(obj.get("errors"))
    if errors is None and obj.get("errors") is not None:
        # Keep an errors member we cannot normalise rather than dropping it.
        details["errors"] = obj["errors"]
    if message is None and errors:
        message = _summarise(errors)
    return _result(message, code, details, errors)


# Each rule returns the parsed body plus the top-level members it consumed, or
# None when the object does not have its shape.
_Match = tuple[ParsedBody, frozenset[str]]


def _json_object(obj: dict[str, Any]) -> ParsedBody:
    for rule in (_rule_detail, _rule_error_object, _rule_error_string, _rule_message, _rule_errors):
        match = rule(obj)
        if match is not None:
            parsed, consumed = match
            leftovers = {key: value for key, value in obj.items() if key not in consumed}
            return replace(parsed, details={**leftovers, **(parsed.details or {})} or None)
    return ParsedBody(details=obj or None)


def _rule_detail(obj: dict[str, Any]) -> _Match | None:
    detail = obj.get("detail")
    consumed = frozenset({"detail"})
    if isinstance(detail, str):
        return _result(detail), consumed
    if isinstance(detail, list) and detail:
        errors = [field_error(item) for item in detail]
        return _result(_summarise(errors), errors=errors), consumed
    if isinstance(detail, dict):
        message = _first_str(detail, ("message", "msg", "detail"))
        return _result(message, details=detail), consumed
    return None


def _rule_error_object(obj: dict[str, Any]) -> _Match | None:
    error = obj.get("error")
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    code, _ = _pick_code(error)
    extras = {key: value for key, value in error.items() if key not in _ERROR_OBJECT_MEMBERS}
    parsed = _result(message if isinstance(message, str) else None, code, extras)
    return parsed, frozenset({"error"})


def _rule_error_string(obj: dict[str, Any]) -> _Match | None:
    error = obj.get("error")
    if not isinstance(error, str):
        return None
    description = obj.get("error_description")
    if isinstance(description, str):
        return _result(description, error), frozenset({"error", "error_description"})
    if isinstance(obj.get("message"), str):
        # Spring Boot and NestJS put the reason phrase in "error" and the real text in
        # "message": let the message rule take it.
        return None
    return _result(error), frozenset({"error"})


def _rule_message(obj: dict[str, Any]) -> _Match | None:
    message = obj.get("message")
    if not isinstance(message, str):
        return None
    code, code_key = _pick_code(obj)
    consumed = {"message"} if code_key is None else {"message", code_key}
    return _result(message, code), frozenset(consumed)


def _rule_errors(obj: dict[str, Any]) -> _Match | None:
    errors = _errors_from(obj.get("errors"))
    if errors is None:
        return None
    raw = obj["errors"]
    if isinstance(raw, dict):
        return _result(_summarise(errors), errors=errors), frozenset({"errors"})
    first = raw[0]
    if isinstance(first, dict):
        message = _first_str(first, ("detail", "message", "title", "msg"))
        code = _code_text(first.get("code"))
        extensions = first.get("extensions")
        if code is None and isinstance(extensions, dict):
            code = _code_text(extensions.get("code"))
    else:
        message, code = str(first), None
    if message is not None and len(raw) > 1:
        suffix = f" (+{len(raw) - 1} more)"
        head = _clean(message, _MESSAGE_LIMIT - len(suffix))
        message = head and head + suffix
    return _result(message, code, errors=errors), frozenset({"errors"})


def _errors_from(value: Any) -> list[dict[str, Any]] | None:
    """Normalise a list of error items or a Rails-style ``{field: [messages]}`` mapping."""
    if isinstance(value, list):
        return [field_error(item) for item in value] or None
    if not isinstance(value, dict):
        return None
    errors = []
    for field, messages in value.items():
        for item in messages if isinstance(messages, list) else [messages]:
            error = field_error(item)
            error["loc"] = error["loc"] or [field]
            errors.append(error)
    return errors or None


def field_error(item: Any) -> dict[str, Any]:
    """One error item as the parser keeps it: `loc`, `msg`, `type` (a non-mapping is its `msg`)."""
    if not isinstance(item, dict):
        return {"loc": [], "msg": str(item), "type": None}
    msg = next(
        (item[key] for key in ("msg", "message", "detail", "title") if item.get(key) is not None),
        "",
    )
    extensions = item.get("extensions")
    candidates = [item.get("type"), item.get("code")]
    if isinstance(extensions, dict):
        candidates.append(extensions.get("code"))
    kind = next((text for text in map(_code_text, candidates) if text is not None), None)
    return {"loc": _loc(item), "msg": msg if isinstance(msg, str) else str(msg), "type": kind}


def _loc(item: dict[str, Any]) -> list[Any]:
    loc = _path_value(item.get("loc"))
    if loc is not None:
        return loc
    source = item.get("source")
    source = source if isinstance(source, dict) else {}
    pointer = item.get("pointer")
    if not isinstance(pointer, str):
        pointer = source.get("pointer")
    if isinstance(pointer, str):
        return _split_pointer(pointer)
    # JSON:API names the offending query parameter here when there is no pointer.
    parameter = source.get("parameter")
    if isinstance(parameter, str):
        return [parameter]
    for key in ("field", "param", "path"):
        loc = _path_value(item.get(key))
        if loc is not None:
            return loc
    return []


def _path_value(value: Any) -> list[Any] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [
            part if isinstance(part, (str, int)) and not isinstance(part, bool) else str(part)
            for part in value
        ]
    return None


def _split_pointer(pointer: str) -> list[Any]:
    # The "#" form is a URI fragment, so its segments are percent-encoded.
    if pointer.startswith("#"):
        pointer = unquote(pointer[1:])
    if not pointer:
        return []
    segments = pointer[1:].split("/") if pointer.startswith("/") else [pointer]
    return [segment.replace("~1", "/").replace("~0", "~") for segment in segments]


def _summarise(errors: list[dict[str, Any]]) -> str:
    count = len(errors)
    described = []
    for error in errors[:_SUMMARY_ITEMS]:
        where = ".".join(str(part) for part in error["loc"])
        described.append(": ".join(part for part in (where, error["msg"]) if part))
    summary = f"{count} validation error{'' if count == 1 else 's'}"
    listed = "; ".join(part for part in described if part)
    if listed:
        summary = f"{summary}: {listed}"
    if count > _SUMMARY_ITEMS:
        summary = f"{summary} (+{count - _SUMMARY_ITEMS} more)"
    return summary


def _pick_code(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """Pick a code as (value, member it came from): a str code, else a str type, else a number."""
    code = obj.get("code")
    if isinstance(code, str):
        return code, "code"
    kind = obj.get("type")
    if isinstance(kind, str):
        return kind, "type"
    text = _code_text(code)
    return (text, "code") if text is not None else (None, None)


def _code_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _first_str(obj: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((obj[key] for key in keys if isinstance(obj.get(key), str)), None)


def _result(
    message: str | None,
    code: str | None = None,
    details: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> ParsedBody:
    return ParsedBody(
        message=None if message is None else _clean(message, _MESSAGE_LIMIT),
        code=code or None,
        details=details or None,
        errors=errors or None,
    )


def _clean_str(value: Any) -> str | None:
    return _clean(value, _MESSAGE_LIMIT) if isinstance(value, str) else None


def _html_text(text: str) -> str | None:
    opening = _TITLE_OPEN.search(text)
    closing = _TITLE_CLOSE.search(text, opening.end()) if opening else None
    if opening and closing:
        title = _clean(html.unescape(text[opening.end() : closing.start()]), _HTML_LIMIT)
        if title:
            return title
    return _clean(html.unescape(_TAG.sub(" ", _drop_blocks(text))), _HTML_LIMIT)


def _drop_blocks(text: str) -> str:
    """Remove scripts, styles and comments, whose text is never meant for a reader."""
    kept = []
    position = 0
    while (opening := _BLOCK_OPEN.search(text, position)) is not None:
        kept.append(text[position : opening.start()])
        closer = _BLOCK_CLOSE[(opening.group(1) or "<!--").lower()]
        closing = closer.search(text, opening.end())
        if closing is None:
            return "".join(kept)
        kept.append(" ")
        position = closing.end()
    kept.append(text[position:])
    return "".join(kept)


def _clean(text: str, limit: int) -> str | None:
    """Collapse whitespace and cap at ``limit`` characters; None when nothing is left."""
    words = []
    size = 0
    # Stop collecting once past the cap so a huge body costs one partial scan.
    for match in _WORD.finditer(text):
        # Sliced, not match.group(): one huge "word" must not be copied whole.
        start = match.start()
        words.append(text[start : min(match.end(), start + limit + 1)])
        size += len(words[-1]) + 1
        if size > limit:
            break
    return _clip(" ".join(words), limit) or None


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
