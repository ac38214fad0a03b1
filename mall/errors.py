"""Domain errors carry a stable code; the HTTP edge maps each kind to a status."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule said no. `code` is stable and documented (e.g. `catalog.sku_duplicate`)."""

    kind = "invalid"  # invalid | not_found | gone | conflict | forbidden | unauthorized | rate_limited | unavailable

    def __init__(self, code: str, detail: str = "", **extra):
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code
        self.extra = extra


class Invalid(DomainError):
    kind = "invalid"


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    kind = "conflict"


class Gone(DomainError):
    """It existed and is no more (an expired link): asking again will not help."""

    kind = "gone"


class Forbidden(DomainError):
    kind = "forbidden"


class Unauthorized(DomainError):
    kind = "unauthorized"


class RateLimited(DomainError):
    kind = "rate_limited"


class Unavailable(DomainError):
    """An upstream we depend on (WeChat, Stripe) is down or busy; retrying later may work."""

    kind = "unavailable"


class BadRequest(DomainError):
    """The request cannot be understood as sent (missing header, bad signature)."""

    kind = "bad_request"
