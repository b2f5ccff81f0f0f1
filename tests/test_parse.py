"""Tests for the error-body parser in ``httpx_resilience._parse``."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from httpx_resilience._parse import ParsedBody, decode_text, parse_error_body

JSON = "application/json"
PROBLEM = "application/problem+json"
TEN_MB = 10 * 1024 * 1024
# Generous on purpose: the point is "no quadratic blow-up", not a benchmark.
FAST_ENOUGH_SECONDS = 5.0


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()


def parse_json(value: Any, content_type: str | None = JSON) -> ParsedBody:
    return parse_error_body(body_of(value), content_type)


def timed_parse(body: bytes, content_type: str | None) -> tuple[ParsedBody, float]:
    start = time.perf_counter()
    parsed = parse_error_body(body, content_type)
    return parsed, time.perf_counter() - start


# --- empty and plain text -------------------------------------------------


def test_empty_body_gives_all_none() -> None:
    """An empty body yields a ParsedBody with every field None."""
    assert parse_error_body(b"", JSON) == ParsedBody()


def test_whitespace_body_gives_no_message() -> None:
    """A whitespace-only body yields no message."""
    assert parse_error_body(b" \r\n\t ", "text/plain") == ParsedBody()


def test_plain_text_whitespace_is_collapsed() -> None:
    """Plain text becomes one line with runs of whitespace collapsed and ends stripped."""
    parsed = parse_error_body(b"  Service\n\n  Unavailable \t(upstream)  ", "text/plain")
    assert parsed == ParsedBody(message="Service Unavailable (upstream)")


def test_plain_text_is_capped_at_500_chars() -> None:
    """Long plain text is cut to 500 characters ending in an ellipsis."""
    message = parse_error_body(b"word " * 1000, "text/plain").message
    assert message is not None
    assert len(message) == 500
    assert message.endswith("…")


def test_control_characters_do_not_reach_the_message() -> None:
    """Terminal escapes and NULs in a text body are treated as separators."""
    parsed = parse_error_body(b"bad\x1b[31mred\x00end", "text/plain")
    assert parsed.message == "bad [31mred end"


def test_non_json_under_json_content_type_is_plain_text() -> None:
    """A json content type with a non-JSON body falls back to plain text."""
    parsed = parse_error_body(b"Internal Server Error", JSON)
    assert parsed == ParsedBody(message="Internal Server Error")


def test_brace_prefixed_text_that_is_not_json_is_plain_text() -> None:
    """Text that merely starts with a brace is reported as text."""
    parsed = parse_error_body(b"{oops not json", None)
    assert parsed == ParsedBody(message="{oops not json")


# --- decoding -------------------------------------------------------------


def test_latin1_charset_is_honoured() -> None:
    """A latin-1 body declared as charset=latin-1 decodes to the right characters."""
    body = "Café fermé".encode("latin-1")
    parsed = parse_error_body(body, "text/plain; charset=latin-1")
    assert parsed.message == "Café fermé"


def test_invalid_utf8_without_charset_is_replaced() -> None:
    """Invalid UTF-8 with no charset decodes with replacement characters instead of raising."""
    parsed = parse_error_body(b"bad \xff\xfe bytes", "text/plain")
    assert parsed.message == "bad \ufffd\ufffd bytes"


def test_bogus_charset_falls_back_to_utf8() -> None:
    """An unknown charset name falls back to UTF-8."""
    assert decode_text("é".encode(), "text/plain; charset=nope") == "é"


def test_non_text_codec_falls_back_to_utf8() -> None:
    """A charset naming a bytes-to-bytes codec (base64) falls back to UTF-8."""
    assert decode_text(b"abc", "text/plain; charset=base64") == "abc"


def test_quoted_charset_is_honoured() -> None:
    """A quoted, upper-case charset parameter is still recognised."""
    assert decode_text("ü".encode("cp1252"), 'text/plain; CHARSET="windows-1252"') == "ü"


def test_utf8_bom_does_not_hide_json() -> None:
    """A leading UTF-8 byte order mark does not stop JSON from being recognised."""
    parsed = parse_error_body(b"\xef\xbb\xbf" + body_of({"detail": "Nope"}), JSON)
    assert parsed.message == "Nope"


# --- RFC 9457 problem details ---------------------------------------------


def test_problem_json_with_extensions_and_errors() -> None:
    """Problem details map detail, type, extension members and an errors list."""
    problem = {
        "type": "https://example.com/probs/out-of-credit",
        "title": "You do not have enough credit.",
        "status": 403,
        "detail": "Your current balance is 30, but that costs 50.",
        "instance": "/account/12345/msgs/abc",
        "balance": 30,
        "accounts": ["/account/12345", "/account/67890"],
        "errors": [{"detail": "must be positive", "pointer": "#/age"}],
    }
    parsed = parse_json(problem, PROBLEM)
    assert parsed == ParsedBody(
        message="Your current balance is 30, but that costs 50.",
        code="https://example.com/probs/out-of-credit",
        details={"balance": 30, "accounts": ["/account/12345", "/account/67890"]},
        errors=[{"loc": ["age"], "msg": "must be positive", "type": None}],
    )


def test_problem_json_uses_title_without_detail() -> None:
    """Without a detail member the title becomes the message."""
    parsed = parse_json({"title": "Not Found", "status": 404}, PROBLEM)
    assert parsed == ParsedBody(message="Not Found")


def test_problem_json_about_blank_is_not_a_code() -> None:
    """The default type about:blank is not reported as a code."""
    parsed = parse_json({"type": "about:blank", "title": "Forbidden"}, PROBLEM)
    assert parsed.code is None


def test_problem_json_non_string_type_is_not_a_code() -> None:
    """A non-string type member gives no code."""
    parsed = parse_json({"type": 7, "detail": "x"}, PROBLEM)
    assert parsed.code is None


def test_problem_json_media_type_is_case_insensitive() -> None:
    """The problem media type matches in any case and with parameters."""
    parsed = parse_json({"type": "urn:x", "detail": "d"}, "Application/Problem+JSON; charset=utf-8")
    assert parsed.code == "urn:x"


def test_problem_json_field_map_errors() -> None:
    """An ASP.NET-style errors mapping in a problem is normalised per field."""
    problem = {
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"Name": ["The Name field is required."]},
    }
    parsed = parse_json(problem, PROBLEM)
    assert parsed.message == "One or more validation errors occurred."
    assert parsed.errors == [{"loc": ["Name"], "msg": "The Name field is required.", "type": None}]


def test_problem_json_array_falls_through_to_json_rules() -> None:
    """A problem+json body that is not an object is handled by the generic JSON rules."""
    parsed = parse_error_body(b'["a", 1]', PROBLEM)
    assert parsed == ParsedBody(message='["a",1]')


def test_problem_json_non_json_body_is_plain_text() -> None:
    """A problem+json content type over plain text falls through to text."""
    assert parse_error_body(b"upstream died", PROBLEM) == ParsedBody(message="upstream died")


def test_problem_shape_without_problem_content_type_uses_json_rules() -> None:
    """Without the problem media type a detail member is read by the FastAPI rule."""
    parsed = parse_json({"type": "urn:x", "detail": "d"})
    assert parsed == ParsedBody(message="d", details={"type": "urn:x"})


# --- FastAPI --------------------------------------------------------------


def test_fastapi_detail_string() -> None:
    """A string detail is the message."""
    assert parse_json({"detail": "Item not found"}) == ParsedBody(message="Item not found")


def test_fastapi_validation_errors() -> None:
    """A list detail becomes normalised errors and a summarising message."""
    body = {
        "detail": [
            {"loc": ["body", "name"], "msg": "field required", "type": "value_error.missing"},
            {"loc": ["query", "age"], "msg": "value is not a valid integer", "type": "int"},
        ]
    }
    parsed = parse_json(body)
    assert parsed.message == (
        "2 validation errors: body.name: field required; query.age: value is not a valid integer"
    )
    assert parsed.errors == [
        {"loc": ["body", "name"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["query", "age"], "msg": "value is not a valid integer", "type": "int"},
    ]


def test_fastapi_single_validation_error_is_singular() -> None:
    """One validation error is summarised as "1 validation error"."""
    parsed = parse_json({"detail": [{"loc": ["body", 0], "msg": "bad", "type": "t"}]})
    assert parsed.message == "1 validation error: body.0: bad"


def test_fastapi_summary_lists_three_then_counts_the_rest() -> None:
    """The summary names three errors and counts the remainder."""
    detail = [{"loc": [f"f{i}"], "msg": "required", "type": None} for i in range(5)]
    parsed = parse_json({"detail": detail})
    assert parsed.message == (
        "5 validation errors: f0: required; f1: required; f2: required (+2 more)"
    )
    assert parsed.errors is not None
    assert len(parsed.errors) == 5


def test_fastapi_pydantic_v2_extras_are_dropped_from_errors() -> None:
    """Extra members of a field error (input, ctx, url) are not kept in the normalised error."""
    item = {
        "type": "missing",
        "loc": ["body", "x"],
        "msg": "Field required",
        "input": {},
        "url": "u",
    }
    parsed = parse_json({"detail": [item]})
    assert parsed.errors == [{"loc": ["body", "x"], "msg": "Field required", "type": "missing"}]


def test_fastapi_detail_object() -> None:
    """An object detail gives its message member as the message and itself as details."""
    parsed = parse_json({"detail": {"message": "Quota exceeded", "limit": 10}})
    assert parsed == ParsedBody(
        message="Quota exceeded", details={"message": "Quota exceeded", "limit": 10}
    )


def test_wrong_typed_detail_falls_through() -> None:
    """A numeric detail does not match and a later rule reads the body."""
    parsed = parse_json({"detail": 5, "message": "Boom"})
    assert parsed == ParsedBody(message="Boom", details={"detail": 5})


# --- {"error": {...}} -----------------------------------------------------


def test_error_object_openai_style() -> None:
    """An error object gives message and string code; param and leftovers go to details."""
    body = {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
        "request_id": "req_1",
    }
    parsed = parse_json(body)
    assert parsed == ParsedBody(
        message="Incorrect API key provided.",
        code="invalid_api_key",
        details={"param": None, "request_id": "req_1"},
    )


def test_error_object_numeric_code_prefers_string_type() -> None:
    """A numeric code yields to a string type."""
    parsed = parse_json({"error": {"message": "m", "type": "rate_limit", "code": 429}})
    assert parsed.code == "rate_limit"


def test_error_object_numeric_code_without_type_is_text() -> None:
    """A numeric code with no string type becomes its decimal text (Google style)."""
    body = {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
    parsed = parse_json(body)
    assert parsed == ParsedBody(message="Not found", code="404", details={"status": "NOT_FOUND"})


def test_error_object_without_code_uses_type() -> None:
    """With no code member the string type is the code."""
    assert parse_json({"error": {"message": "m", "type": "server_error"}}).code == "server_error"


def test_error_object_boolean_code_is_not_a_code() -> None:
    """A boolean code is neither a string nor a number, so there is no code."""
    assert parse_json({"error": {"message": "m", "code": True}}).code is None


# --- {"error": "text"} and OAuth -------------------------------------------


def test_error_string_is_the_message() -> None:
    """A string error member is the message."""
    assert parse_json({"error": "Unauthorized"}) == ParsedBody(message="Unauthorized")


def test_oauth_error_response() -> None:
    """An OAuth error gives the error as code and error_description as message."""
    body = {
        "error": "invalid_grant",
        "error_description": "The refresh token has expired.",
        "error_uri": "https://example.com/oauth-errors",
    }
    assert parse_json(body) == ParsedBody(
        message="The refresh token has expired.",
        code="invalid_grant",
        details={"error_uri": "https://example.com/oauth-errors"},
    )


def test_wrong_typed_error_matches_nothing() -> None:
    """A list under error matches no rule, leaving the object as details."""
    assert parse_json({"error": ["x"]}) == ParsedBody(details={"error": ["x"]})


# --- {"message": ...} ------------------------------------------------------


def test_message_with_string_code() -> None:
    """A message member with a string code gives both."""
    parsed = parse_json({"message": "Bad credentials", "code": "AUTH_FAILED"})
    assert parsed == ParsedBody(message="Bad credentials", code="AUTH_FAILED")


def test_message_alone() -> None:
    """A lone message member is enough."""
    assert parse_json({"message": "Not Found"}) == ParsedBody(message="Not Found")


def test_message_with_numeric_code_is_text() -> None:
    """A numeric code next to a message becomes decimal text, integral floats included."""
    assert parse_json({"message": "m", "code": 500.0}).code == "500"


def test_message_keeps_unused_type_in_details() -> None:
    """A type member not used as the code stays in details."""
    parsed = parse_json({"message": "m", "code": "E1", "type": "validation"})
    assert parsed == ParsedBody(message="m", code="E1", details={"type": "validation"})


def test_wrong_typed_message_gives_no_message() -> None:
    """An object-valued message matches nothing and gives no message."""
    assert parse_json({"message": {"a": 1}}) == ParsedBody(details={"message": {"a": 1}})


# --- {"errors": ...} -------------------------------------------------------


def test_jsonapi_errors() -> None:
    """JSON:API errors give the first detail, its code, and pointers as locations."""
    body = {
        "errors": [
            {
                "status": "422",
                "code": "blank",
                "title": "Invalid Attribute",
                "detail": "First name must contain at least two characters.",
                "source": {"pointer": "/data/attributes/firstName"},
            },
            {"status": "422", "title": "Invalid Attribute", "source": {"parameter": "sort"}},
        ],
        "jsonapi": {"version": "1.1"},
    }
    parsed = parse_json(body, "application/vnd.api+json")
    assert parsed.message == "First name must contain at least two characters. (+1 more)"
    assert parsed.code == "blank"
    assert parsed.details == {"jsonapi": {"version": "1.1"}}
    assert parsed.errors == [
        {
            "loc": ["data", "attributes", "firstName"],
            "msg": "First name must contain at least two characters.",
            "type": "blank",
        },
        {"loc": ["sort"], "msg": "Invalid Attribute", "type": None},
    ]


def test_jsonapi_numeric_code_is_text() -> None:
    """A numeric code on the first JSON:API error becomes decimal text."""
    assert parse_json({"errors": [{"code": 1001, "title": "t"}]}).code == "1001"


def test_graphql_errors() -> None:
    """GraphQL errors give message, extensions.code and the path as location."""
    body = {
        "data": None,
        "errors": [
            {
                "message": "Cannot query field 'nme' on type 'User'.",
                "locations": [{"line": 2, "column": 3}],
                "path": ["user", 0, "nme"],
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
        ],
    }
    assert parse_json(body) == ParsedBody(
        message="Cannot query field 'nme' on type 'User'.",
        code="GRAPHQL_VALIDATION_FAILED",
        details={"data": None},
        errors=[
            {
                "loc": ["user", 0, "nme"],
                "msg": "Cannot query field 'nme' on type 'User'.",
                "type": "GRAPHQL_VALIDATION_FAILED",
            }
        ],
    )


def test_rails_errors_mapping() -> None:
    """A Rails field-to-messages mapping gives one error per message and a summary."""
    parsed = parse_json({"errors": {"name": ["can't be blank", "is too short"], "age": "is bad"}})
    assert parsed.message == (
        "3 validation errors: name: can't be blank; name: is too short; age: is bad"
    )
    assert parsed.errors == [
        {"loc": ["name"], "msg": "can't be blank", "type": None},
        {"loc": ["name"], "msg": "is too short", "type": None},
        {"loc": ["age"], "msg": "is bad", "type": None},
    ]


def test_errors_list_of_strings() -> None:
    """A list of plain strings gives one error per string and the first as message."""
    parsed = parse_json({"errors": ["Name can't be blank", "Email is invalid"]})
    assert parsed.message == "Name can't be blank (+1 more)"
    assert parsed.errors == [
        {"loc": [], "msg": "Name can't be blank", "type": None},
        {"loc": [], "msg": "Email is invalid", "type": None},
    ]


def test_empty_errors_list_matches_nothing() -> None:
    """An empty errors list is not an error shape; the object is kept as details."""
    assert parse_json({"errors": []}) == ParsedBody(details={"errors": []})


# --- other JSON ------------------------------------------------------------


def test_unmatched_object_becomes_details() -> None:
    """An object matching no rule gives no message and the whole object as details."""
    body = {"status": 500, "timestamp": "2024-01-01T00:00:00Z"}
    assert parse_json(body) == ParsedBody(details=body)


def test_empty_object_gives_all_none() -> None:
    """An empty JSON object yields nothing."""
    assert parse_json({}) == ParsedBody()


def test_leftover_members_merge_with_rule_details() -> None:
    """Unconsumed top-level members are merged with the rule's own details."""
    parsed = parse_json({"detail": {"msg": "slow down", "retry": 3}, "trace": "abc"})
    assert parsed.details == {"trace": "abc", "msg": "slow down", "retry": 3}


def test_json_array_is_compact_text() -> None:
    """A JSON array gives its compact text as the message and no details."""
    parsed = parse_error_body(b'[ {"a": 1},  "b" ]', JSON)
    assert parsed == ParsedBody(message='[{"a":1},"b"]')


def test_json_string_scalar_is_the_message() -> None:
    """A JSON string gives its content, unquoted, as the message."""
    assert parse_error_body(b'"Too many requests"', JSON) == ParsedBody(message="Too many requests")


def test_json_number_scalar_is_text() -> None:
    """A JSON number gives its text as the message."""
    assert parse_error_body(b"42", JSON) == ParsedBody(message="42")


def test_json_null_gives_nothing() -> None:
    """A JSON null yields nothing."""
    assert parse_error_body(b"null", JSON) == ParsedBody()


def test_json_detected_from_body_without_content_type() -> None:
    """A body starting with a brace is read as JSON even without a json content type."""
    assert parse_error_body(b'  {"detail": "x"}', "text/plain") == ParsedBody(message="x")


def test_json_message_is_capped_at_1000_chars() -> None:
    """A message taken from JSON is cut to 1000 characters ending in an ellipsis."""
    message = parse_json({"message": "x" * 5000}).message
    assert message is not None
    assert len(message) == 1000
    assert message.endswith("…")


# --- field error normalisation ---------------------------------------------


def test_field_error_loc_string_becomes_list() -> None:
    """A string loc becomes a one-element list."""
    parsed = parse_json({"detail": [{"loc": "name", "msg": "m"}]})
    assert parsed.errors == [{"loc": ["name"], "msg": "m", "type": None}]


@pytest.mark.parametrize(
    ("pointer", "loc"),
    [
        ("#/a/b", ["a", "b"]),
        ("/a/b", ["a", "b"]),
        ("#/a%20b/c~1d~0e", ["a b", "c/d~e"]),
        ("", []),
    ],
)
def test_field_error_pointer_becomes_loc(pointer: str, loc: list[str]) -> None:
    """JSON pointers (plain or fragment form, with escapes) are split into locations."""
    parsed = parse_json({"errors": [{"detail": "m", "pointer": pointer}]})
    assert parsed.errors == [{"loc": loc, "msg": "m", "type": None}]


def test_field_error_falls_back_to_field_then_param() -> None:
    """Without loc or pointer, field or param gives the location."""
    parsed = parse_json({"errors": [{"field": "email", "message": "m"}, {"param": ["q", 1]}]})
    assert parsed.errors == [
        {"loc": ["email"], "msg": "m", "type": None},
        {"loc": ["q", 1], "msg": "", "type": None},
    ]


def test_field_error_non_dict_items() -> None:
    """Non-object items become errors whose msg is their text."""
    parsed = parse_json({"detail": [7, None]})
    assert parsed.errors == [
        {"loc": [], "msg": "7", "type": None},
        {"loc": [], "msg": "None", "type": None},
    ]


def test_field_error_message_and_type_are_converted() -> None:
    """A non-string msg is converted to text and a numeric code becomes the type."""
    parsed = parse_json({"errors": [{"title": 12, "code": 3}]})
    assert parsed.errors == [{"loc": [], "msg": "12", "type": "3"}]


def test_field_error_odd_loc_parts_become_text() -> None:
    """Location parts that are neither str nor int are turned into text."""
    parsed = parse_json({"detail": [{"loc": ["a", 1, True, None], "msg": "m"}]})
    assert parsed.errors == [{"loc": ["a", 1, "True", "None"], "msg": "m", "type": None}]


# --- HTML -----------------------------------------------------------------

HTML_WITH_TITLE = b"""<!DOCTYPE html>
<html><head><title>502 Bad Gateway &amp; friends</title></head>
<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"""


def test_html_title_is_the_message() -> None:
    """An HTML page is reduced to its unescaped title."""
    parsed = parse_error_body(HTML_WITH_TITLE, "text/html")
    assert parsed == ParsedBody(message="502 Bad Gateway & friends")


def test_html_without_title_uses_text() -> None:
    """Without a title, tags are dropped, entities unescaped and whitespace collapsed."""
    body = b"<html><body>\n<h1>Oops</h1>\n<p>It&#39;s   broken &lt;sorry&gt;</p></body></html>"
    assert parse_error_body(body, None).message == "Oops It's broken <sorry>"


def test_html_scripts_styles_and_comments_are_dropped() -> None:
    """Script, style and comment contents never reach the message."""
    body = (
        b"<html><head><style>p { color: red }</style>"
        b"<script>var s = '<p>not this</p>';</script></head>"
        b"<body><!-- hidden --><p>Shown</p></body></html>"
    )
    assert parse_error_body(body, "text/html").message == "Shown"


def test_html_text_is_capped_at_200_chars() -> None:
    """HTML text is cut to 200 characters ending in an ellipsis."""
    message = parse_error_body(b"<html><p>" + b"long " * 200 + b"</p></html>", None).message
    assert message is not None
    assert len(message) == 200
    assert message.endswith("…")


def test_html_content_type_without_markup() -> None:
    """A text/html body without markup is still reduced to its text."""
    assert parse_error_body(b"Service Unavailable", "text/html").message == "Service Unavailable"


def test_html_under_json_content_type() -> None:
    """An HTML page served as JSON (a proxy error) is read as HTML."""
    assert parse_error_body(HTML_WITH_TITLE, JSON).message == "502 Bad Gateway & friends"


# --- hostile input --------------------------------------------------------


def test_deeply_nested_json_does_not_raise() -> None:
    """JSON nested past the recursion limit is reported as capped text."""
    parsed = parse_error_body(b"[" * 100_000, JSON)
    assert parsed.message is not None
    assert len(parsed.message) <= 500


def test_ten_megabyte_text_is_fast_and_capped() -> None:
    """A 10 MB text body is parsed quickly into a capped message."""
    parsed, elapsed = timed_parse(b"lorem ipsum " * (TEN_MB // 12), "text/plain")
    assert elapsed < FAST_ENOUGH_SECONDS
    assert parsed.message is not None
    assert len(parsed.message) == 500


def test_ten_megabyte_json_looking_garbage_is_fast_and_capped() -> None:
    """A 10 MB body that starts like JSON but is not is parsed quickly into a capped message."""
    parsed, elapsed = timed_parse(b'{"detail": "' + b"x " * (TEN_MB // 2), JSON)
    assert elapsed < FAST_ENOUGH_SECONDS
    assert parsed.message is not None
    assert len(parsed.message) == 500


def test_ten_megabyte_unclosed_tags_is_fast() -> None:
    """Many unclosed tags and script openers are scanned in linear time."""
    body = b"<html><title>" + b"<script<style<!--<a " * (TEN_MB // 20)
    parsed, elapsed = timed_parse(body, "text/html")
    assert elapsed < FAST_ENOUGH_SECONDS
    assert parsed.message is None or len(parsed.message) <= 200


def test_parsed_body_is_frozen() -> None:
    """ParsedBody instances cannot be modified."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParsedBody().message = "x"  # type: ignore[misc]


# --- properties -----------------------------------------------------------

CONTENT_TYPES = [
    None,
    "",
    PROBLEM,
    JSON,
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "text/plain",
    "text/plain; charset=latin-1",
    "text/plain; charset=utf-16",
    "text/html",
    "text/html; charset=nope",
    "application/json; charset=nope",
    'application/problem+json; charset="utf-32"',
    "text/plain; charset=idna",
    "text/plain; charset=undefined",
    "text/plain; charset=rot13",
    ";;;=",
    "charset=utf-8",
    "\x00garbage/\xff; charset",
]

# Member names the rules look at, so generated objects often hit a rule.
SHAPE_KEYS = [
    "detail",
    "title",
    "type",
    "status",
    "errors",
    "error",
    "message",
    "code",
    "msg",
    "loc",
    "error_description",
    "source",
    "pointer",
    "extensions",
    "field",
    "param",
    "path",
    "instance",
]

content_types = st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=40))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(SHAPE_KEYS) | st.text(max_size=10),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def assert_well_formed(parsed: ParsedBody) -> None:
    assert isinstance(parsed, ParsedBody)
    assert parsed.message is None or (isinstance(parsed.message, str) and parsed.message)
    assert parsed.message is None or len(parsed.message) <= 1000
    assert parsed.code is None or isinstance(parsed.code, str)
    assert parsed.details is None or isinstance(parsed.details, dict)
    assert parsed.errors is None or isinstance(parsed.errors, list)
    for error in parsed.errors or []:
        assert isinstance(error, dict)
        assert set(error) == {"loc", "msg", "type"}
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert error["type"] is None or isinstance(error["type"], str)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), content_type=content_types)
def test_any_bytes_parse_to_a_well_formed_result(body: bytes, content_type: str | None) -> None:
    """Arbitrary bytes under any content type never raise and give a well-formed result."""
    assert_well_formed(parse_error_body(body, content_type))


@settings(max_examples=300, deadline=None)
@given(value=json_values, content_type=content_types)
def test_any_json_parses_to_a_well_formed_result(value: Any, content_type: str | None) -> None:
    """Arbitrary JSON values under any content type never raise and give a well-formed result."""
    assert_well_formed(parse_error_body(body_of(value), content_type))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), content_type=content_types)
def test_decode_text_never_raises(body: bytes, content_type: str | None) -> None:
    """decode_text returns a str for any bytes and content type."""
    assert isinstance(decode_text(body, content_type), str)


def test_spring_style_error_phrase_yields_to_message() -> None:
    """A reason phrase in "error" beside a real "message" (Spring, NestJS) gives the message."""
    body = (
        b'{"timestamp": "2026-01-01", "status": 404, "error": "Not Found", "message": "No pet 7"}'
    )
    parsed = parse_error_body(body, "application/json")
    assert parsed.message == "No pet 7"
    assert parsed.details is not None
    assert parsed.details["error"] == "Not Found"
