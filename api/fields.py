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


class Bool(fields.Boolean):
    """A JSON `true` or `false`, nothing else: marshmallow's Boolean also takes 0, 1, "yes", "on" and more, where
    the document promises a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class QueryBool(fields.Boolean):
    """A boolean in a query string: exactly `true` or `false`, as OpenAPI writes one there."""

    truthy = frozenset({"true"})
    falsy = frozenset({"false"})
