"""Fields shared by the request schemas."""

from marshmallow import fields, validate

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns: a larger one is bad input, not a server error


def Id(**kw) -> fields.Integer:  # noqa: N802 (used like a field class)
    """A row id a client sends: a strict integer from 1 to MAX_ID."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw)
