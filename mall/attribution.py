"""Where a cart line came from, and the signed tokens that prove it.

Commission and live-room reports are paid on attribution, so a shopper cannot claim a
host or guide by typing ids: non-organic sources arrive as tokens signed by the
platform (live cart links, guide share links, group-buy invitations) and verified here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mall.errors import Invalid

SALT = "mall.attribution.v1"
DEFAULT_MAX_AGE = 7 * 24 * 3600


class SourceType(StrEnum):
    ORGANIC = "organic"
    LIVE = "live"  # live room + host
    GUIDE = "guide"  # guide share
    GROUP_BUY = "group_buy"
    FLASH_SALE = "flash_sale"


# What each source must name, so reports and commission can rely on it.
REQUIRED_REFS = {
    SourceType.ORGANIC: set(),
    SourceType.LIVE: {"room_id", "host_id"},
    SourceType.GUIDE: {"guide_id"},
    SourceType.GROUP_BUY: {"campaign_id"},
    SourceType.FLASH_SALE: {"sale_id", "item_id"},
}


@dataclass(frozen=True)
class Source:
    type: SourceType = SourceType.ORGANIC
    refs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"type": str(self.type), **self.refs}


ORGANIC = Source()


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def sign(source: Source, *, secret: str) -> str:
    """Issued by the capability that owns the source (live links, guide shares ...)."""
    _check_refs(source.type, source.refs)
    return _serializer(secret).dumps(source.as_dict())


def verify(token: str | None, *, secret: str, max_age: int = DEFAULT_MAX_AGE) -> Source:
    """No token means organic. A bad or stale token is an error, not a silent downgrade."""
    if not token:
        return ORGANIC
    try:
        data = dict(_serializer(secret).loads(token, max_age=max_age))
    except SignatureExpired as exc:
        raise Invalid("attribution.expired", "This share link has expired.", field="source_token") from exc
    except BadSignature as exc:
        raise Invalid("attribution.invalid", "This share link is not valid.", field="source_token") from exc
    kind = SourceType(data.pop("type"))
    _check_refs(kind, data)
    return Source(kind, data)


# The sources a shopper comes with that someone is paid or credited for (a live room's host, a guide): they
# survive into a promotion's purchase beside the promotion's own source.
CARRIED = {SourceType.LIVE, SourceType.GUIDE}
ORIGIN = "origin"  # the key under which a promotion's line source carries the shopper's


def beside(promotion: dict, origin: dict | None) -> dict:
    """A flash or group-buy line's source: the promotion's own (its `type` stays the promotion's), with the
    live or guide source the shopper came with under `origin`, if any:
    {"type": "flash_sale", "sale_id": 1, "item_id": 2, "origin": {"type": "live", "room_id": 3, "host_id": 9}}."""
    if origin is None or origin.get("type") not in CARRIED:
        return promotion
    return {**promotion, ORIGIN: dict(origin)}


def credited(line_source: dict) -> dict:
    """Who a line's sale is credited to: the live or guide source it carries (its own, or under `origin` for a
    promotion's line), else the line's source itself (organic, or the promotion's)."""
    return line_source.get(ORIGIN) or line_source


def _check_refs(kind: SourceType, refs: dict) -> None:
    missing = REQUIRED_REFS[kind] - refs.keys()
    if missing:
        raise Invalid("attribution.incomplete", f"A {kind} source needs {', '.join(sorted(missing))}.")
