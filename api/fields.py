"""Fields shared by the request schemas."""

from marshmallow import fields, validate
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns: a larger one is bad input, not a server error


def Id(**kw) -> fields.Integer:  # noqa: N802 (used like a field class)
    """A row id a client sends: a strict integer from 1 to MAX_ID."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw)


class IdConverter(IntegerConverter):
    """`<int:...>` in routes: at most MAX_ID, so a larger path id matches no route (404) instead of reaching
    the database as an out-of-range integer (a 500 on PostgreSQL)."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's parameter name)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
