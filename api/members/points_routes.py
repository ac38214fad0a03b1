"""Points (ADR 0027): a shopper's balance, history and daily check-in; operators' adjustments and the liability
report for finance."""

from __future__ import annotations

from flask import request

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.idempotency import HEADER, idempotent
from api.members.points_schemas import (
    PointsAdjustedSchema,
    PointsAdjustmentSchema,
    PointsBalanceSchema,
    PointsCheckInSchema,
    PointsEntryPageSchema,
    PointsHistoryArgs,
    PointsLiabilityArgs,
    PointsLiabilitySchema,
)  # fmt: skip
from api.tx import commit, read_only
from mall.errors import NotFound
from mall.identity.roles import MERCHANT, Role
from mall.members import grants, queries

blp = MallBlueprint("points", __name__, description="Points: balance, history, check-in, adjustments, liability")


@blp.get("/me/points")
@blp.auth(Role.SHOPPER)
@blp.response(200, PointsBalanceSchema)
def my_balance():
    """Available, pending (earned on orders not settled yet) and reserved points, and what expires next."""
    read_only()
    return queries.summary(db.session, user_id=current_actor().user_id)


@blp.get("/me/points/entries")
@blp.auth(Role.SHOPPER)
@blp.arguments(PointsHistoryArgs, location="query")
@blp.response(200, PointsEntryPageSchema)
def my_entries(args):
    """The member's ledger, newest first; page with `before_id` = the previous page's `next_before_id`."""
    read_only()
    items, next_before = queries.history(db.session, user_id=current_actor().user_id, **args)
    return {"items": items, "next_before_id": next_before}


@blp.post("/me/points/check-in")
@blp.auth(Role.SHOPPER)
@blp.response(200, PointsCheckInSchema)
def check_in():
    """Today's check-in (the shop's calendar day): points once a day; again the same day grants nothing."""
    user_id = current_actor().user_id
    done = grants.check_in(db.session, user_id=user_id)
    commit()
    return {"day": done.day, "points": done.points, "granted": done.granted,
            "balance": queries.summary(db.session, user_id=user_id)}  # fmt: skip


@blp.post("/admin/points/adjustments")
@blp.auth(Role.PLATFORM_ADMIN)
@idempotent("points.adjust")
@blp.arguments(PointsAdjustmentSchema)
@blp.response(201, PointsAdjustedSchema)
def adjust(body):
    """A platform operator's adjustment with its reason: + a new lot (funded by `brand_id` if named, else the
    platform), - taken from available points oldest first (409 `points.insufficient` if there are not enough). Needs an
    `Idempotency-Key` header."""
    actor = current_actor()
    key = f"{actor.user_id}:{request.headers[HEADER]}"
    balance = grants.adjust(db.session, actor=actor, key=key, **body)
    return {"user_id": body["user_id"], "available": balance.available, "pending": balance.pending,
            "reserved": balance.reserved}  # fmt: skip


@blp.get("/admin/points/liability")
@blp.auth(*MERCHANT)
@blp.arguments(PointsLiabilityArgs, location="query")
@blp.response(200, PointsLiabilitySchema)
def liability(args):
    """Outstanding points by funder (brands, the platform) as a count, money value and value net of expected
    breakage, with the method. Brand admins see their brand's only."""
    actor = current_actor()
    brand_id = args["brand_id"]
    if actor.role == Role.BRAND_ADMIN:
        if brand_id not in (None, actor.brand_id):
            raise NotFound("points.brand_not_found", f"Brand {brand_id} not found.")
        brand_id = actor.brand_id
    read_only()
    return queries.liability(db.session, brand_id=brand_id)
