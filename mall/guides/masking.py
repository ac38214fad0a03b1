"""What a guide may see of a shopper: a masked name and phone, never the whole of either (ADR 0025). Shopper ids
stay visible: they are opaque, and the guide's "why" lookup names a customer by them."""

from __future__ import annotations


def name(value: str | None) -> str:
    """The first character and two stars ("李**", "L**"); empty stays empty."""
    value = (value or "").strip()
    return f"{value[0]}**" if value else ""


def phone(value: str | None) -> str | None:
    """The first three and last four digits of a mobile number ("138****0000"); a short number keeps only its last
    two; none stays None."""
    digits = "".join(c for c in (value or "") if c.isdigit())
    if not digits:
        return None
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 1) + digits[-2:]
