"""The request parser every blueprint uses: webargs' Flask parser, refusing what no text column can hold."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import marshmallow as ma
from flask import request
from webargs.flaskparser import FlaskParser


class MallParser(FlaskParser):
    def load_json(self, req, schema):
        """Also a 400 "Invalid JSON body." for JSON that Python's decoder refuses with other errors than webargs
        catches: nesting deeper than the recursion limit, integers of more than 4,300 digits."""
        try:
            return super().load_json(req, schema)
        except (RecursionError, ValueError) as error:
            self._handle_invalid_json_error(error, req)

    def pre_load(self, location_data: Mapping, *, schema, req, location: str) -> Mapping:
        """A NUL character in any string is bad input (422): PostgreSQL text cannot store it and would answer
        with an error (a 500) after the request had started writing."""
        refuse_nul(location_data)
        return location_data


def json_body():
    """The request's JSON body, or None when there is none or it does not decode (nested deeper than the
    recursion limit included, which Flask's `silent` lets through)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def refuse_nul(data) -> None:
    """Raise a ValidationError naming every string in `data` (keys included) that holds a NUL character."""
    nuls = list(_nul_paths(data, ""))
    if nuls:
        raise ma.ValidationError({path or "_schema": ["Must not contain a NUL character."] for path in nuls})


def _nul_paths(value, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                yield where
            yield from _nul_paths(item, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{i}" if path else str(i))
