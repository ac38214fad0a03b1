"""The pricing pipeline: ordered, declared steps turn chosen cart lines into a quote.

    item price -> promotion price -> coupons -> points -> shipping

Each step reads and adjusts the same `Quote`. Promotions, coupons and points plug in by
registering a provider for their step; every discount is allocated to lines by largest
remainder so line amounts always sum exactly to the totals, and no line (hence no
payable) ever goes below zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mall import wiring
from mall.money import allocate


@dataclass
class Allocation:
    line_key: int
    amount: int


@dataclass
class Discount:
    step: str
    source: str  # "coupon:12", "promotion:flash_sale:3", "points"
    label: str
    amount: int
    allocations: list[Allocation]


@dataclass
class PricedLine:
    key: int  # the cart line id
    sku_id: int
    product_id: int
    brand_id: int
    category_id: int
    title: str
    specs: dict
    tier: str
    currency: str
    quantity: int
    list_price: int
    unit_price: int = 0
    source: dict = field(default_factory=dict)
    price_source: str = "item"  # which step set the unit price
    discounts: dict[str, int] = field(default_factory=dict)  # discount source -> amount taken here
    cart_line_id: int | None = None  # the cart line it comes from (a bundle's parts share theirs; `key` is unique)
    # A part of a bundle bought `bundle_quantity` times at `bundle_price` each (ADR 0010); `quantity` counts the
    # part's units. The bundle step prices the parts together.
    bundle_id: int | None = None
    bundle_quantity: int | None = None
    bundle_price: int | None = None
    bundle_title: str | None = None

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity

    @property
    def discount_total(self) -> int:
        return sum(self.discounts.values())

    @property
    def payable(self) -> int:
        return self.subtotal - self.discount_total


@dataclass
class BrandPart:
    brand_id: int
    shipping_fee: int = 0
    shipping_waived: bool = False


@dataclass
class Quote:
    currency: str
    lines: list[PricedLine]
    discounts: list[Discount] = field(default_factory=list)
    brands: dict[int, BrandPart] = field(default_factory=dict)
    free_shipping_brands: set[int] = field(default_factory=set)  # waived by a coupon
    extras: dict = field(default_factory=dict)  # what steps report back (e.g. the coupons they considered)
    facts: dict = field(default_factory=dict)  # the context's SHOPPER_FACTS, for the placement that writes it

    def lines_of(self, brand_id: int) -> list[PricedLine]:
        return [line for line in self.lines if line.brand_id == brand_id]

    @property
    def items_total(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount_total(self) -> int:
        return sum(line.discount_total for line in self.lines)

    @property
    def shipping_total(self) -> int:
        return sum(part.shipping_fee for part in self.brands.values())

    @property
    def payable(self) -> int:
        return self.items_total - self.discount_total + self.shipping_total

    def apply_discount(self, *, step: str, source: str, label: str, amount: int, lines: list[PricedLine]) -> int:
        """Take up to `amount` from `lines` in proportion to what each still costs. Returns what was taken."""
        lines = list({line.key: line for line in lines}.values())  # a line named twice is still one line
        taken = min(amount, sum(line.payable for line in lines))
        if taken <= 0:
            return 0
        shares = allocate(taken, [line.payable for line in lines])
        for line, share in zip(lines, shares, strict=True):
            if share:
                line.discounts[source] = line.discounts.get(source, 0) + share
        allocations = [Allocation(line.key, s) for line, s in zip(lines, shares, strict=True) if s]
        self.discounts.append(Discount(step, source, label, taken, allocations))
        return taken


@dataclass
class PricingContext:
    """What the steps may look at besides the quote: who buys, and what they asked to use."""

    shopper_id: int
    member_level: int = 0
    coupon_ids: tuple[int, ...] | None = ()  # None: let the coupon step pick the best combination
    points: int = 0
    shipping_policies: dict[int, tuple[int, int | None]] = field(default_factory=dict)  # brand -> (fee, free_above)
    session: object = None
    facts: dict[str, object] = field(default_factory=dict)  # SHOPPER_FACTS, as read when the quote started
    # line key -> (price source, unit price): a promotion's price for a line bought outside the cart (a flash
    # purchase, a group-buy), set by the promotion step so that the coupons step sees the line as promoted
    promotion_prices: dict[int, tuple[str, int]] = field(default_factory=dict)
    # a placement's quote (in the placement's transaction): a step may take what it prices (the live quota)
    placing: bool = False


Provider = Callable[[Quote, PricingContext], None]


@dataclass
class Step:
    name: str
    providers: list[Provider] = field(default_factory=list)

    def run(self, quote: Quote, ctx: PricingContext) -> None:
        for provider in self.providers:
            provider(quote, ctx)


def _item_price(quote: Quote, ctx: PricingContext) -> None:
    """The starting point: each line at its SKU's price (set when the line was built)."""
    for line in quote.lines:
        line.price_source = "item"


def _promotion_price(quote: Quote, ctx: PricingContext) -> None:
    """The promotion's price the caller fixed for a line (a flash or group-buy purchase); others keep theirs."""
    for line in quote.lines:
        if line.key in ctx.promotion_prices:
            line.price_source, line.unit_price = ctx.promotion_prices[line.key]


def _bundle_price(quote: Quote, ctx: PricingContext) -> None:
    """A bundle's price is a promotion price over its parts (ADR 0010): each part line starts at its list price,
    and the bundle price is split over the parts by largest remainder weighted by their list prices (times the
    units of the part in one bundle); the difference is the bundle's discount on each part line, so the parts'
    lines sum to exactly the bundle price times the bundles bought, and coupons then see what they cost."""
    parts: dict[int, list[PricedLine]] = {}
    for line in quote.lines:
        if line.bundle_id is not None:
            parts.setdefault(line.cart_line_id, []).append(line)
    for lines in parts.values():
        first = lines[0]
        units = [line.quantity // first.bundle_quantity for line in lines]  # the part's units in one bundle
        shares = allocate(first.bundle_price, [line.list_price * n for line, n in zip(lines, units, strict=True)])
        allocations = []
        for line, share in zip(lines, shares, strict=True):
            line.price_source, line.unit_price = "bundle", line.list_price
            off = line.subtotal - share * first.bundle_quantity  # never below 0: see bundle_price_problem
            if off:
                line.discounts[f"bundle:{first.bundle_id}"] = off
                allocations.append(Allocation(line.key, off))
        if allocations:
            quote.discounts.append(Discount("promotion_price", f"bundle:{first.bundle_id}", first.bundle_title or "",
                                            sum(a.amount for a in allocations), allocations))  # fmt: skip


def bundle_price_problem(price: int, parts: list[tuple[int, int]]) -> str | None:
    """Why a bundle at `price` cannot be sold over parts of (list price, units), or None: priced above its parts'
    list prices, a part would cost more in the bundle than alone (and its bundle discount would be negative)."""
    return "price_above_parts" if price > sum(list_price * units for list_price, units in parts) else None


def _shipping(quote: Quote, ctx: PricingContext) -> None:
    """Per brand: a flat fee, waived when the brand's lines, after discounts, reach the threshold."""
    for brand_id in dict.fromkeys(line.brand_id for line in quote.lines):
        fee, free_above = ctx.shipping_policies.get(brand_id, (0, None))
        spent = sum(line.payable for line in quote.lines_of(brand_id))
        waived = fee > 0 and (
            brand_id in quote.free_shipping_brands or (free_above is not None and spent >= free_above)
        )
        quote.brands[brand_id] = BrandPart(brand_id, 0 if waived else fee, waived)


PIPELINE: tuple[Step, ...] = (
    Step("item_price", [_item_price]),
    Step("promotion_price", [_promotion_price, _bundle_price]),  # flash sale, group-buy, bundle; member prices later
    Step("coupons", []),  # the coupon capability registers its best-combination allocator here
    Step("points", []),  # the members capability registers points redemption here
    Step("shipping", [_shipping]),
)
_BUILT_IN = (_item_price, _promotion_price, _bundle_price, _shipping)


# What steps want to know about the shopper before their own queries, read with the shopper's row when a
# quote starts (no extra round trip): name -> a function of the users.id column giving a SQL expression.
# A step whose fact says there is nothing to look up (e.g. no coupon held) skips its query.
SHOPPER_FACTS: dict[str, Callable[[object], object]] = {}


def register_shopper_fact(name: str, expression: Callable[[object], object]) -> None:
    SHOPPER_FACTS[name] = expression


def register(step_name: str, provider: Provider) -> None:
    """Plug a capability into a step (called once at import time of that capability)."""
    step = next(s for s in PIPELINE if s.name == step_name)
    if provider not in step.providers:
        step.providers.append(provider)


def reset() -> None:
    """Back to the built-in providers only (the composition root installs the capabilities' again)."""
    for step in PIPELINE:
        step.providers[:] = [p for p in step.providers if p in _BUILT_IN]
    SHOPPER_FACTS.clear()


def installed() -> dict[str, list[str]]:
    """Step -> its providers, in the order they run."""
    return {step.name: [wiring.name_of(p) for p in step.providers] for step in PIPELINE}


def price(quote: Quote, ctx: PricingContext, steps: tuple[Step, ...] = PIPELINE) -> Quote:
    wiring.require()  # a quote with no coupon or promotion step installed would be a wrong price
    quote.facts = ctx.facts
    for step in steps:
        step.run(quote, ctx)
    return quote
