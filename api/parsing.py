"""How the edge reads requests: webargs' Flask parser, and two checks before any view: one that bounds the
input's size and shape (ADR 0036), one that refuses text no text column can hold."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping

from flask import current_app, request
from flask_smorest import abort
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge

# NUL: PostgreSQL text cannot store it. A lone UTF-16 surrogate (JSON's "\ud800" without its pair): no UTF-8
# encoding exists for it, so the database driver, and the JSON encoder of a response echoing it, fail on it.
# Either reached the database as a 500 after the request had started writing.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MESSAGES = {True: "Must not contain a NUL character.", False: "Must not contain a lone UTF-16 surrogate."}

# Bounds on any input, whatever its route's schema says (ADR 0036): a string field without a declared maximum
# is held to MAX_STRING characters (the longest declared one, a product description, is as long), and a JSON
# body nests at most MAX_DEPTH arrays and objects (the deepest schema nests four).
MAX_STRING = 20_000
MAX_DEPTH = 32
TOO_LONG = f"Longer than {MAX_STRING:,} characters."
LONG_KEY = f"Has a key longer than {MAX_STRING:,} characters."
TOO_DEEP = f"Nested deeper than {MAX_DEPTH} arrays and objects."


class MallParser(FlaskParser):
    def load_json(self, req, schema):
        """Also a 400 "Invalid JSON body." for JSON that Python's decoder refuses with other errors than webargs
        catches: nesting deeper than the recursion limit, integers of more than 4,300 digits."""
        try:
            return super().load_json(req, schema)
        except (RecursionError, ValueError) as error:
            self._handle_invalid_json_error(error, req)


def body_required(view):
    """For a view whose JSON body is required (the document says so): no body, or one that is not JSON, is a
    422, instead of the empty object webargs would hand on (a PATCH answering 200 having changed nothing)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not is_json_request(request) or not request.get_data(cache=True).strip():
            abort(422, messages={"json": {"_schema": ["A JSON body is required."]}})
        return view(*args, **kwargs)

    return wrapper


def no_unexpected_body(view):
    """For every view, run after its authentication and argument parsing: an operation that documents no
    request body refuses one (422, each field of a JSON object named as unknown), as a body schema refuses
    fields it does not know, instead of ignoring, say, an `amount` sent to pay an order. No body, `{}` and
    `null` are no body."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method not in ("GET", "HEAD") and not _documents_a_body(request.endpoint):
            raw = request.get_data(cache=True).strip()
            if raw and raw not in (b"{}", b"null"):
                body = json_body() if is_json_request(request) else None
                unknown = {str(key): ["Unknown field."] for key in body} if isinstance(body, dict) else {}
                abort(422, messages={"json": unknown or {"_schema": ["This operation takes no request body."]}})
        return view(*args, **kwargs)

    return wrapper


def _documents_a_body(endpoint: str) -> bool:
    doc = getattr(current_app.view_functions[endpoint], "_apidoc", {})
    in_body = (p["in"] == "json" for p in doc.get("arguments", {}).get("parameters", []))
    return any(in_body) or "requestBody" in doc.get("manual_doc", {})


def json_body():
    """The request's JSON body, or None when there is none or it does not decode (nested deeper than the
    recursion limit included, which Flask's `silent` lets through)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def bound_input() -> None:
    """`before_request`, so for every route however it parses its input: a body longer than the app's
    MAX_CONTENT_LENGTH is a 413 (before any of it is read; one sent without a length is cut off there as it is
    read), a JSON body nested deeper than MAX_DEPTH or a string (or key) of the body or query longer than
    MAX_STRING a 422. A body with few brackets and shorter than MAX_STRING bytes cannot break either rule,
    so an ordinary request is neither decoded nor walked here."""
    req = request._get_current_object()  # one proxy lookup: this runs for every request
    if req.routing_exception is not None:
        return  # a 404/405 says more
    limit = req.max_content_length
    if limit is not None and (req.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    messages = {}
    if len(req.query_string) > MAX_STRING:
        query = {name: values[0] if len(values) == 1 else values for name, values in req.args.lists()}
        messages["query"] = _out_of_bounds(query)
    raw = req.get_data(cache=True) if req.is_json else b""
    if len(raw) > MAX_STRING or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        try:
            body = req.get_json(silent=True)  # kept for the views; None when not JSON: the parser's 400 then
        except RecursionError:  # nested deeper than Python's decoder goes
            messages["json"] = {"_schema": [TOO_DEEP]}
        else:
            messages["json"] = _out_of_bounds(body)
    messages = {location: found for location, found in messages.items() if found}
    if messages:
        abort(422, messages=messages)


def _out_of_bounds(value) -> dict[str, list[str]]:
    """{dotted path: [complaint]} for each string or key longer than MAX_STRING; only the depth complaint when
    `value` nests deeper than MAX_DEPTH. Walked without recursion."""
    found: dict[str, list[str]] = {}
    stack = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                found[_printable(path) or "_schema"] = [TOO_LONG]
        elif isinstance(item, dict | list):
            if depth == MAX_DEPTH:
                return {"_schema": [TOO_DEEP]}
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and len(key) > MAX_STRING:
                    found[_printable(path) or "_schema"] = [LONG_KEY]
                    continue
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
    return found


def refuse_unstorable_text() -> None:
    """`before_request`, so for every route however it parses its input (webargs, its own schema load, a raw
    body): a 422 naming every string of the query string or the JSON body, keys included, that holds a NUL
    character or a lone surrogate. In UTF-8 JSON either can only be written as a \\u escape, so a body without
    one is not decoded here."""
    req = request._get_current_object()  # one proxy lookup: this runs for every request
    if req.routing_exception is not None:
        return  # a 404/405 says more
    errors = {}
    if b"%" in req.query_string:  # a NUL (or anything but plain ASCII) arrives percent-encoded
        query = {name: values[0] if len(values) == 1 else values for name, values in req.args.lists()}
        errors = dict(_unstorable(query, "query", ""))
    raw = req.get_data(cache=True) if req.is_json else b""
    if b"\\u" in raw or b"\x00" in raw:  # an escape, or UTF-16/32 (which json.loads also decodes)
        errors |= dict(_unstorable(json_body(), "json", ""))  # None when not JSON: the parser's 400 then
    if errors:
        messages = {}
        for (location, path), message in errors.items():
            messages.setdefault(location, {})[path or "_schema"] = [message]
        abort(422, messages=messages)


def _unstorable(value, location: str, path: str) -> Iterator[tuple[tuple[str, str], str]]:
    if isinstance(value, str):
        if found := _UNSTORABLE.search(value):
            yield (location, _printable(path)), _MESSAGES[found[0] == "\x00"]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield from _unstorable(key, location, where)
            yield from _unstorable(item, location, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _unstorable(item, location, f"{path}.{i}" if path else str(i))


def _printable(path: str) -> str:
    """The field's name as the answer can carry it: a lone surrogate written as its escape."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")
