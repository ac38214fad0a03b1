"""The coupons step of the pricing pipeline: usable coupons, the best combination, and why the rest
cannot be used. At most one platform coupon and one coupon per brand per order; brand coupons apply
first, so a platform coupon's threshold sees what is left to pay."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.catalog.models import Category
from mall.checkout.pricing import PricingContext, Quote
from mall.errors import Invalid
from mall.money import allocate
from mall.promotions.coupons import lifecycle, rules
from mall.promotions.coupons.models import Coupon

MAX_COMBINATIONS = 4096  # beyond this, the best coupon per slot is chosen greedily


def apply_coupons(quote: Quote, ctx: PricingContext) -> None:
    session: Session | None = ctx.session
    if session is None:
        return
    # coupon_ids == (): none applied, but the held coupons are still listed (and the best marked) to choose from
    held = _held(session, ctx.shopper_id) if ctx.facts.get("holds_coupons", True) else []
    # category paths matter only to category-scoped coupons: no query when none is held (the usual case)
    paths = _category_paths(session, quote) if any(c.template.scope_type == "categories" for c in held) else {}
    choose_and_apply(quote, ctx, held=held, paths=paths, now=clock.now())


def choose_and_apply(quote: Quote, ctx: PricingContext, *, held: list[Coupon], paths: dict[int, str], now) -> None:
    """The pure part: given the coupons held, pick (or check) a combination and apply it to the quote."""
    views = [rules.LineView(ln.key, ln.brand_id, ln.product_id, ln.category_id, ln.price_source, ln.payable)
             for ln in quote.lines]  # fmt: skip
    solo = {c.id: rules.evaluate(c, views, now=now, currency=quote.currency, category_paths=paths) for c in held}
    usable = [c for c in held if c.status == "available" and solo[c.id][2] is None]
    best = _best(usable, _Simulator(views, quote, ctx, solo))
    chosen = best if ctx.coupon_ids is None else _explicit(held, solo, ctx.coupon_ids)
    _apply(quote, chosen, now, paths)
    quote.extras["coupons"] = _report(held, solo, best, chosen)


# Listed in the quote (a locked one as in use). Two equalities, not IN: an IN list's parameters are expanded
# into the SQL text on every execution, and this runs in every quote and placement.
_HELD = sa.or_(Coupon.status == "available", Coupon.status == "locked")


def _held(session: Session, shopper_id: int) -> list[Coupon]:
    query = sa.select(Coupon).where(Coupon.user_id == shopper_id, _HELD).order_by(Coupon.valid_until, Coupon.id)
    return list(session.scalars(query))


def holds_coupons(user_id):
    """The shopper fact the quote reads with the shopper's row: only a holder's quote looks the coupons up."""
    return sa.exists().where(Coupon.user_id == user_id, _HELD)


def _category_paths(session: Session, quote: Quote) -> dict[int, str]:
    ids = {ln.category_id for ln in quote.lines}
    return dict(session.execute(sa.select(Category.id, Category.path).where(Category.id.in_(ids))).all())


class _Simulator:
    """What applying a combination saves the shopper: discounts, plus or minus the shipping the order then
    really costs (a discount may drop a brand below its free-shipping threshold; a free-shipping coupon
    saves nothing where shipping is free anyway). None if the combination does not hold together.

    The search asks this of every combination, so the work is shared: coupons apply one after the other
    (`_in_order`), and the payables after a sequence of coupons are simulated once, then extended by each
    combination that starts with that sequence. What a coupon covers does not change as payables move,
    so its eligible lines (and any reason it can never apply) come from its `rules.evaluate` on the quote
    (`solo`); only the threshold and the amount depend on what is left to pay, decided exactly as
    `rules.evaluate` decides them on the discounted lines."""

    def __init__(self, views: list[rules.LineView], quote: Quote, ctx: PricingContext, solo: dict[int, tuple]):
        self.views, self.solo = views, solo
        self.index = {id(v): i for i, v in enumerate(views)}  # rules.evaluate returns the views it was given
        brand_lines: dict[int, list[int]] = {}
        for i, view in enumerate(views):
            brand_lines.setdefault(view.brand_id, []).append(i)
        self.fees = 0  # fees that are never waived, and the brands whose fee may be
        self.waivable: list[tuple[int, tuple[int, ...], int, int | None]] = []
        for brand_id, lines in brand_lines.items():
            fee, free_above = ctx.shipping_policies.get(brand_id, (0, None))
            if fee > 0:
                self.waivable.append((brand_id, tuple(lines), fee, free_above))
            else:
                self.fees += fee
        self.start = (tuple(v.payable for v in views), frozenset(quote.free_shipping_brands))
        self.start_cost = self._cost(self.start)
        self.states: dict[tuple[int, ...], tuple | None] = {}
        self.compiled: dict[int, tuple] = {}

    def value(self, combo: list[Coupon]) -> int | None:
        state, key = self.start, ()
        for item in sorted(map(self._compile, combo)):  # by (platform last, id): the order of _in_order
            key += (item[1],)
            if key not in self.states:
                self.states[key] = self._apply(state, item)
            state = self.states[key]
            if state is None:
                return None
        return self.start_cost - self._cost(state)

    def _compile(self, coupon: Coupon) -> tuple:
        """(order, id, eligible line indices, reason it can never apply, template), once per coupon."""
        if id(coupon) not in self.compiled:
            tpl = coupon.template
            _, eligible, reason = self.solo[coupon.id]  # rules.evaluate(coupon, self.views, ...)
            never = None if reason in (None, "below_threshold") else reason  # below_threshold depends on payables
            lines = tuple(self.index[id(v)] for v in eligible)
            self.compiled[id(coupon)] = ((tpl.brand_id is None, coupon.id), coupon.id, lines, never, tpl)
        return self.compiled[id(coupon)]

    def _apply(self, state: tuple | None, item: tuple) -> tuple | None:
        """The state after one more coupon, or None if it cannot apply there."""
        _, _, lines, never, tpl = item
        if state is None or never:
            return None
        payables, free = state
        weights = [payables[i] for i in lines]
        base = sum(weights)
        if base < tpl.threshold or base <= 0:  # below_threshold, as rules.evaluate says on these payables
            return None
        if tpl.value_type == "free_shipping":
            free = free | {self.views[i].brand_id for i in lines}
        amount = rules._amount(tpl, base)  # the one definition of what a coupon takes off
        if not amount:
            return payables, free
        after = list(payables)
        for i, share in zip(lines, allocate(amount, weights), strict=True):
            after[i] -= share
        return tuple(after), free

    def _cost(self, state: tuple) -> int:
        """Items still to pay plus shipping, by the rule of the pipeline's shipping step (pricing._shipping)."""
        payables, free = state
        total = sum(payables) + self.fees
        for brand_id, lines, fee, free_above in self.waivable:
            if brand_id in free or (free_above is not None and sum(map(payables.__getitem__, lines)) >= free_above):
                continue  # waived
            total += fee
        return total


def _in_order(combo) -> list[Coupon]:
    return sorted(combo, key=lambda c: (c.template.brand_id is None, c.id))


def _best(usable: list[Coupon], simulator: _Simulator) -> list[Coupon]:
    slots: dict[str, list[Coupon]] = {}
    for coupon in usable:
        slots.setdefault(rules.slot(coupon.template), []).append(coupon)
    options = [[None, *coupons] for coupons in slots.values()]
    if options and _count(options) > MAX_COMBINATIONS:  # greedy: the best of each slot on its own
        tops = [max(opts[1:], key=lambda c: simulator.value([c]) or 0) for opts in options]
        # with or without each slot's top coupon, so one that would cost more (shipping) can be left out
        options = [[None, top] for top in tops] if 2 ** len(tops) <= MAX_COMBINATIONS else [[top] for top in tops]
    best, best_key = [], (0, 0)
    for picked in itertools.product(*options):
        combo = [c for c in picked if c is not None]
        value = simulator.value(combo)
        if value is None or value <= 0:  # saves nothing (or costs more, e.g. shipping): not worth a coupon
            continue
        key = (value, -len(combo))
        if key > best_key:  # ties keep the earlier (fewer coupons, earlier expiry) combination
            best, best_key = combo, key
    return best


def _count(options) -> int:
    n = 1
    for opts in options:
        n *= len(opts)
    return n


def _explicit(held, solo, coupon_ids) -> list[Coupon]:
    by_id = {c.id: c for c in held}
    chosen, slots = [], set()
    for coupon_id in dict.fromkeys(coupon_ids):
        coupon = by_id.get(coupon_id)
        if coupon is None or coupon.status != "available":
            raise lifecycle.not_available([coupon_id])
        reason = solo[coupon_id][2]
        if reason is None and rules.slot(coupon.template) in slots:
            reason = "not_combinable"
        if reason:
            raise Invalid("coupon.not_applicable", f"Coupon {coupon_id} cannot be used: {reason}.",
                          field="coupon_ids", coupon_id=coupon_id, reason=reason)  # fmt: skip
        slots.add(rules.slot(coupon.template))
        chosen.append(coupon)
    return chosen


def _apply(quote: Quote, chosen: list[Coupon], now, paths) -> None:
    for coupon in _in_order(chosen):
        views = [rules.LineView(ln.key, ln.brand_id, ln.product_id, ln.category_id, ln.price_source, ln.payable)
                 for ln in quote.lines]  # fmt: skip
        amount, eligible, reason = rules.evaluate(coupon, views, now=now, currency=quote.currency, category_paths=paths)
        if reason:  # an explicit pick that a previous pick pushed below its threshold
            raise Invalid("coupon.not_applicable", f"Coupon {coupon.id} cannot be used: {reason}.",
                          field="coupon_ids", coupon_id=coupon.id, reason=reason)  # fmt: skip
        keys = {v.key for v in eligible}
        lines = [ln for ln in quote.lines if ln.key in keys]
        if coupon.template.value_type == "free_shipping":
            quote.free_shipping_brands |= {ln.brand_id for ln in lines}
        else:
            quote.apply_discount(step="coupons", source=f"coupon:{coupon.id}", label=coupon.template.name,
                                 amount=amount, lines=lines)  # fmt: skip
    quote.extras["applied_coupon_ids"] = [c.id for c in chosen]


def _report(held, solo, best, chosen) -> list[dict]:
    best_ids, applied = {c.id for c in best}, {c.id for c in chosen}
    report = []
    for coupon in held:
        amount, _, reason = solo[coupon.id]
        if coupon.status == "locked":
            reason = "locked"
        report.append({"coupon_id": coupon.id, "template_id": coupon.template_id, "name": coupon.template.name,
                       "value_type": coupon.template.value_type, "valid_until": coupon.valid_until,
                       "usable": reason is None, "reason": reason, "amount_alone": amount,
                       "best": coupon.id in best_ids, "applied": coupon.id in applied})  # fmt: skip
    return report
