"""Strict input: what reaches a route is valid Unicode text and JSON of sane size and shape.

StrictInputMiddleware checks every request before routing, so a route added later is covered:

- path segments and query parameters must be valid UTF-8 once %-decoded (an encoded lone
  surrogate such as `%ED%B2%80` is not): otherwise 400 naming the path parameter or query field;
- a JSON body (content type `application/json` or `application/*+json`) must be UTF-8, parse,
  nest at most MAX_JSON_DEPTH containers deep, hold only integers that fit 64 bits and finite
  numbers, and no string (key or value) may hold a lone surrogate (`"\\udc80"` in JSON escapes):
  otherwise 400 naming the field.

Every refusal has ANT's error shape `{"error": {"code": "invalid_request", "message": ...}}`.
Types (an int where an int belongs) are checked afterwards by the strict pydantic models.
"""

from __future__ import annotations

import email.message
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from ant_scheduler.api.auth import ASGIApp, Receive, Scope, Send, deny, replaying

MAX_JSON_DEPTH = 32
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
CODE = "invalid_request"
_NOT_UTF8 = "not valid UTF-8 text (malformed bytes or a lone surrogate)"


class InputError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class _Bad:
    """Stands in for a number json.loads must not turn into a value; the walk reports where."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


_BIG_INT = _Bad("integer out of the 64-bit range")
_NOT_FINITE = _Bad("number is not finite")


def _parse_int(text: str) -> int | _Bad:
    # Never int() a long digit string: Python refuses more than 4300 digits with ValueError.
    if len(text) > 20:
        return _BIG_INT
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _BIG_INT


def _parse_float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _NOT_FINITE


def _parse_constant(text: str) -> _Bad:
    return _NOT_FINITE  # NaN, Infinity, -Infinity: not JSON


def is_valid_text(s: str) -> bool:
    """False when `s` holds a lone surrogate (it cannot be encoded, stored or sent back)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field(path: Sequence[str]) -> str:
    return ".".join(path) if path else "body"


def _name(key: str) -> str:
    return key if len(key) <= 60 else key[:57] + "..."


def parse_json_body(body: bytes) -> Any:
    """The JSON document in `body`, or InputError naming the field that is wrong.

    Bodies can be megabytes (a multi-queue submission, a restore of many ids), so the common case
    stays at C speed: the number hooks run only when the text holds a long digit run or a
    3-digit exponent, the Unicode and number check is one json.dumps of the document, and the
    nesting depth is counted on the text. Only a document already known to be wrong is walked in
    Python, to name the field.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("body", "not valid UTF-8") from None
    big_numbers = _may_hold_big_numbers(body)
    hooks: dict[str, Any] = {"parse_constant": _parse_constant}
    if big_numbers:
        hooks.update(parse_int=_parse_int, parse_float=_parse_float)
    try:
        doc = json.loads(text, **hooks)
    except RecursionError:
        raise InputError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise InputError("body", problem) from None
    except ValueError:
        raise InputError("body", "invalid JSON") from None
    suspect = (
        big_numbers
        or b"NaN" in body
        or b"Infinity" in body
        or (b"\\u" in body and _SURROGATE_ESCAPE.search(body) is not None)
    )
    if (suspect and not _clean(doc)) or _too_deep(body):
        name_problem(doc)
    return doc


# A lone surrogate can only come from a \uD800-\uDFFF escape (the text itself is strict UTF-8).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Scans run on bytes.translate() copies, at C speed: digits become "0", exponent letters "e",
# signs "+", brackets stay, anything else becomes a space.
_NUMBER_SHAPES = bytes(
    ord("0")
    if chr(b).isdigit() and b < 128
    else ord("e")
    if b in b"eE"
    else ord("+")
    if b in b"+-"
    else ord(" ")
    for b in range(256)
)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# How much of a document known to be wrong is searched for the field to name (bounded time).
_NAMING_VALUES = 1_000_000
_NAMING_CONTAINERS = 50_000


def _may_hold_big_numbers(body: bytes) -> bool:
    """A number leaves 64 bits or becomes infinite only with 19+ digits or a 3-digit exponent."""
    shapes = body.translate(_NUMBER_SHAPES)
    return b"0" * 19 in shapes or b"e000" in shapes or b"e+000" in shapes


def _max_depth(brackets: bytes) -> int:
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _clean(doc: Any) -> bool:
    """No lone surrogate, no stand-in for a bad number, anywhere in `doc` (at C speed)."""
    try:
        json.dumps(doc, ensure_ascii=False, check_circular=False, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return True


def _too_deep(body: bytes) -> bool:
    """Arrays and objects nested more than MAX_JSON_DEPTH deep in the valid JSON `body`."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    # Counting brackets inside strings too gives an upper bound; strip strings only if needed.
    if _max_depth(body.translate(None, _NOT_BRACKETS)) <= MAX_JSON_DEPTH:
        return False
    return _max_depth(_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)) > MAX_JSON_DEPTH


def name_problem(doc: Any) -> None:
    """Raise InputError naming the field that is wrong in `doc`: nested too deep, a lone
    surrogate in a key or a string, or a bad number. A huge document is searched only so far;
    past that the error names the body."""
    if isinstance(doc, _Bad):
        raise InputError("body", doc.problem)
    if isinstance(doc, str) and not is_valid_text(doc):
        raise InputError("body", "not valid Unicode text (lone surrogate)")
    values, containers = _NAMING_VALUES, _NAMING_CONTAINERS
    stack: list[tuple[Any, tuple[str, ...], int]] = []
    if isinstance(doc, (dict, list)):
        stack.append((doc, (), 0))
    while stack:
        value, path, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            top = _field(path[:1]) if isinstance(doc, dict) else "body"
            raise InputError(top, f"nested deeper than {MAX_JSON_DEPTH} levels")
        values -= len(value)
        containers -= 1
        if values < 0 or containers < 0:
            break
        items: list[tuple[tuple[str, ...], Any]]
        if isinstance(value, dict):
            for key in value:
                if not is_valid_text(key):
                    raise InputError(_field(path), "a key is not valid Unicode text")
            items = [((*path, _name(k)), v) for k, v in value.items()]
        else:
            items = [((*path, str(i)), v) for i, v in enumerate(value)]
        children: list[tuple[Any, tuple[str, ...], int]] = []
        for item_path, item in items:
            if isinstance(item, str):
                if not is_valid_text(item):
                    raise InputError(_field(item_path), "not valid Unicode text (lone surrogate)")
            elif isinstance(item, _Bad):
                raise InputError(_field(item_path), item.problem)
            elif isinstance(item, (dict, list)):
                children.append((item, item_path, depth + 1))
        stack.extend(reversed(children))
    raise InputError("body", "not valid: a lone surrogate, a bad number or too deep nesting")


def is_json(content_type: str | None) -> bool:
    """What FastAPI parses as JSON: application/json and application/*+json."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _utf8(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_path(raw_path: bytes, templates: Callable[[], Iterable[str]] = tuple) -> None:
    """Each %-decoded path segment must be UTF-8. A bad one is named after the parameter in its
    place in the first of `templates` (route paths like `/api/v1/tasks/{task_id}`) that fits;
    else `path`."""
    segments = raw_path.split(b"/")
    for index, segment in enumerate(segments):
        if not _utf8(segment):
            try:
                known = list(templates())
            except Exception:  # naming is a courtesy: never let it turn a 400 into a 500
                known = []
            raise InputError(_path_param(known, segments, index), _NOT_UTF8)


def _path_param(templates: Iterable[str], segments: list[bytes], index: int) -> str:
    for template in templates:
        parts = template.split("/")
        if len(parts) != len(segments) or not parts[index].startswith("{"):
            continue
        pairs = zip(parts, segments, strict=True)
        if all(p.startswith("{") or p.encode() == s for p, s in pairs):
            return parts[index].strip("{}").split(":", 1)[0]
    return "path"


def check_query(query: bytes) -> None:
    """Each query parameter's name and value must be valid UTF-8 once %-decoded."""
    if not query:
        return
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        raw_name = raw_name.replace(b"+", b" ")
        if not _utf8(raw_name):
            raise InputError("query", "a parameter name is not valid UTF-8 text")
        if not _utf8(raw_value.replace(b"+", b" ")):
            name = unquote_to_bytes(raw_name).decode("utf-8")
            raise InputError(_name(name), _NOT_UTF8)


class StrictInputMiddleware:
    """Refuses (400) requests whose path, query or JSON body breaks the rules above."""

    def __init__(self, app: ASGIApp, templates: Callable[[], Iterable[str]] = tuple) -> None:
        self.app = app
        self._templates = templates  # the API's route paths, to name a bad path parameter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_path(scope.get("raw_path") or scope["path"].encode(), self._templates)
            check_query(scope.get("query_string", b""))
        except InputError as exc:
            await deny(send, 400, CODE, str(exc))
            return
        content_type = None
        for key, value in scope.get("headers", ()):
            if key.lower() == b"content-type":
                content_type = value.decode("latin-1")
        if not is_json(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                parse_json_body(body)
            except InputError as exc:
                await deny(send, 400, CODE, str(exc))
                return
        await self.app(scope, replaying(body, receive), send)
