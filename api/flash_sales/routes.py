"""Flash sales (秒杀): brands schedule them; shoppers see upcoming/live/ended, buy, and ask to be reminded."""

from __future__ import annotations

import functools
import logging

import marshmallow as ma
import redis
from flask import g, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy.exc import IntegrityError
from webargs.flaskparser import abort, is_json_request

from api import idempotency
from api.auth import MallBlueprint, TokenGuard, acting_brand, current_actor
from api.checkout.routes import quote_response
from api.checkout.schemas import PromotionCouponIds, QuoteSchema, SourceToken
from api.extensions import db
from api.fields import Id
from api.flash_sales.fast_path import FastRefusals
from api.orders.schemas import OrderSchema
from api.parsing import json_body
from api.settings import settings
from api.tx import commit, read_only
from mall import attribution, clock, events
from mall.identity.roles import Role
from mall.promotions.flash_sale import services
from workers.flash import gate

blp = MallBlueprint("flash_sales", __name__, description="Flash sales")
log = logging.getLogger(__name__)


@blp.record_once
def _answer_refusals_early(state) -> None:
    """Purchases the gate refuses are answered in front of Flask (api/flash_sales/fast_path.py)."""
    state.app.wsgi_app = FastRefusals(state.app, state.app.wsgi_app, prefix=state.url_prefix or "")


class FlashItemSchema(Schema):
    id = fields.Integer(dump_only=True)
    sku_id = Id(required=True)
    flash_price = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**10))
    quota = fields.Integer(strict=True, required=True, validate=validate.Range(1, 10**7))
    per_shopper_limit = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100))
    remaining = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "units left as admission counts them (may lag by a second), never more than the database allows"
        },
    )


class FlashSaleSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = Id(load_default=None)
    name = fields.String(required=True, validate=validate.Length(1, 100))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    payment_minutes = fields.Integer(strict=True, load_default=10, validate=validate.Range(1, 120))
    phase = fields.String(dump_only=True)
    items = fields.List(fields.Nested(FlashItemSchema), required=True, validate=validate.Length(1, 100))

    @validates_schema
    def _window(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("ends_at must be after starts_at.", field_name="ends_at")


class SalesArgs(Schema):
    when = fields.String(load_default=None, validate=validate.OneOf(["upcoming", "live", "ended"]))


class FlashQuoteSchema(Schema):
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100))
    coupon_ids = PromotionCouponIds


class PurchaseSchema(FlashQuoteSchema):
    address_id = Id(required=True)
    source_token = SourceToken


ORDER = OrderSchema()


def _json_arguments(schema: ma.Schema):
    """`@blp.arguments(schema)` for a JSON body, documented the same, parsed with one schema load (as the
    catalog's `_query_arguments` does for a query string): webargs' per-request machinery cost about a tenth
    of a refused purchase. Same outcomes: a non-JSON body is an empty one, malformed JSON is 400, invalid
    or unknown fields are 422 (messages under "json"), through flask-smorest's error handler."""

    def decorator(view):
        documented = blp.arguments(schema)(view)  # only for its OpenAPI entry

        @functools.wraps(view)
        def parse_then_view(*args, **kwargs):
            data = {}
            if is_json_request(request):
                data = json_body()  # parsed once: the idempotency hash read it already
                if data is None and request.get_data(cache=True).strip() not in (b"", b"null"):
                    abort(400, messages={"json": ["Invalid JSON body."]})
            try:
                parsed = schema.load(data)
            except ma.ValidationError as error:
                abort(blp.ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS, exc=error, messages={"json": error.messages})
            return view(parsed, *args, **kwargs)

        parse_then_view._apidoc = documented._apidoc  # flask-smorest reads the documentation from here
        return parse_then_view

    return decorator


class ReconcileSchema(Schema):
    item_id = fields.Integer()
    agree = fields.Boolean()
    database_remaining = fields.Integer()
    redis_remaining = fields.Integer(allow_none=True)


def _view(sale) -> dict:
    now, flash_gate = clock.now(), gate()
    items = [{"id": i.id, "sku_id": i.sku_id, "flash_price": i.flash_price, "quota": i.quota,
              "per_shopper_limit": i.per_shopper_limit, "remaining": _remaining(i, flash_gate.counters(i.id)[0])}
             for i in sale.items]  # fmt: skip
    return {"id": sale.id, "brand_id": sale.brand_id, "name": sale.name, "starts_at": sale.starts_at,
            "ends_at": sale.ends_at, "payment_minutes": sale.payment_minutes, "phase": services.phase(sale, now),
            "items": items}  # fmt: skip


def _remaining(item, counted: int | None) -> int:
    """What the admission counters say is left, never more than the database allows (its quota less the units
    its committed purchases hold: the item row read with the sale). Counters rebuilt while purchases were in
    flight may say more for a moment, until those purchases finish (services.settle); missing ones say nothing."""
    allowed = max(item.quota - item.sold, 0)
    return allowed if counted is None else max(min(counted, allowed), 0)


@blp.post("/admin/flash-sales")
@blp.auth(Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.arguments(FlashSaleSchema)
@blp.response(201, FlashSaleSchema)
def schedule(body):
    actor = current_actor()
    brand_id = acting_brand(body.pop("brand_id"), code="flash_sale.brand_required")
    sale = services.schedule(db.session, actor=actor, brand_id=brand_id, gate=gate(), **body)
    commit()
    return _view(sale)


@blp.get("/flash-sales")
@blp.arguments(SalesArgs, location="query")
@blp.response(200, FlashSaleSchema(many=True))
def list_sales(args):
    """Upcoming, live or ended slots with the quota left (read from the admission counters)."""
    return [_view(s) for s in services.list_sales(db.session, when=args["when"])]


@blp.get("/flash-sales/<int:sale_id>")
@blp.response(200, FlashSaleSchema)
def get_sale(sale_id):
    return _view(services.get_sale(db.session, sale_id))


@blp.post("/flash-sales/<int:sale_id>/items/<int:item_id>/purchase")
@blp.auth(Role.SHOPPER, deferred=True)  # the token's user is checked inside the gate's script: no round trip
@idempotency.once("flash_sales.purchase")
@_json_arguments(PurchaseSchema())
@blp.response(201, OrderSchema)
def purchase(body, sale_id, item_id):
    """Admitted at once or refused with not_started, ended, sold_out or limit_reached (409). Admitted: a pending
    order at the flash price with the sale's short payment window. Needs an `Idempotency-Key`; a retry with
    it replays the first response (`Idempotent-Replayed: true`), a retry while the first still runs is 409
    idempotency.in_progress. A refusal reads nothing from the database (the flash gate decides in Redis).
    `coupon_ids`: coupons whose template combines with `flash_sale`, applied by the checkout's rules (see the
    quote); another is 422 coupon.not_applicable with its reason, and the units go back."""
    flash_gate, user_id, once = gate(), current_actor().user_id, g.once
    origin = attribution.verify(body.pop("source_token"), secret=settings().secret_key)  # fast_path checks it too
    session = db.session()
    session.expire_on_commit = False  # the after-commit subscribers read the events without a query
    answer = {}

    def keep(order):  # the durable idempotency record, written before the hot rows are taken
        payload = ORDER.dump(order)
        answer["response"] = response = jsonify(payload)
        response.status_code = 201
        answer["sent"] = idempotency.keep(once, response, payload)

    try:
        order = services.purchase(session, flash_gate, sale_id=sale_id, item_id=item_id, user_id=user_id,
                                  once=once, guard=TokenGuard(), on_placed=keep, origin=origin, **body)  # fmt: skip
    except IntegrityError:  # the key's durable record exists: Redis had forgotten the key (units given back)
        session.rollback()
        events.discard(session)
        seen = idempotency.recorded(once)
        if seen is None:
            raise
        raise seen from None
    try:
        session.commit()
    except BaseException:
        session.rollback()
        events.discard(session)
        services.undo(flash_gate, item_id=item_id, user_id=user_id, quantity=body["quantity"], once=once,
                      epoch=session.info.pop("flash_epoch", None))  # fmt: skip
        raise
    events.release(session)
    try:
        flash_gate.remember(item_id=item_id, user_id=user_id, once=once, status=201, response=answer["sent"])
    except redis.RedisError:  # committed all the same; retries meet the in-progress marker, then the database row
        log.warning("flash purchase %s: idempotency record not stored in Redis", order.id, exc_info=True)
    return answer["response"]


@blp.post("/flash-sales/<int:sale_id>/items/<int:item_id>/quote")
@blp.auth(Role.SHOPPER)
@blp.arguments(FlashQuoteSchema)
@blp.response(200, QuoteSchema)
def quote(body, sale_id, item_id):
    """What the purchase would cost, priced as the purchase prices it: the flash price, shipping, and your coupons,
    each usable or not with the checkout's reason (`not_combinable` unless its template combines with
    `flash_sale`); `coupon_ids` are applied as the purchase would apply them (or refused with the same code).
    Says nothing about admission; changes nothing."""
    read_only()
    result = services.quote(db.session, sale_id=sale_id, item_id=item_id, user_id=current_actor().user_id, **body)
    return quote_response(result)


@blp.post("/flash-sales/<int:sale_id>/remind-me")
@blp.auth(Role.SHOPPER)
@blp.response(204)
def remind_me(sale_id):
    """A reminder before the start (5 minutes), through the notification outbox."""
    services.remind_me(db.session, sale_id=sale_id, user_id=current_actor().user_id)
    commit()


@blp.post("/admin/flash-sales/<int:sale_id>/reconcile")
@blp.auth(Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.response(200, ReconcileSchema(many=True))
def reconcile(sale_id):
    """Check the admission counters against the orders in the database, and fix them if they differ."""
    sale = services.get_sale(db.session, sale_id)
    if not current_actor().can_manage_brand(sale.brand_id):
        from mall.errors import Forbidden

        raise Forbidden("flash_sale.other_brand", "Not your brand's flash sale.")
    return [services.reconcile(db.session, gate(), item_id=item.id) for item in sale.items]
