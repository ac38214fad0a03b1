"""The guide workbench's API (ADR 0025): a guide reads their own visits, customers, orders and today's numbers;
a brand admin lists the brand's guides, reads the binding rule's versions and a per-guide report. The page at
/console/guide (api/console) calls these, like any client."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.guides.schemas import (
    GuideCustomerSchema,
    GuideListArgs,
    GuideOrderArgs,
    GuideOrderSchema,
    GuideReportSchema,
    GuideSchema,
    GuideVisitSchema,
    PageArgs,
    ReportArgs,
    RuleArgs,
    RuleReadSchema,
    SummaryArgs,
    SummarySchema,
    page_of,
)
from api.settings import settings
from api.tx import commit, read_only
from mall import clock
from mall.guides import reports, services, workbench
from mall.identity.roles import MERCHANT, Role

blp = MallBlueprint("guide_workbench", __name__, description="The guide workbench: a guide's own figures, and the "
                    "brand admin's per-guide report")  # fmt: skip


def _mine():
    read_only()
    return services.own_guide(db.session, current_actor())


@blp.get("/guide/visits")
@blp.auth(Role.GUIDE)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(GuideVisitSchema))
def my_visits(args):
    """My link visits, newest first: the link, the time, the shopper (masked)."""
    return workbench.visits(db.session, _mine(), **args)._asdict()


@blp.get("/guide/customers")
@blp.auth(Role.GUIDE)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(GuideCustomerSchema))
def my_customers(args):
    """The shoppers bound to me now: since when, the mode, until when; name and phone masked."""
    return workbench.customers(db.session, _mine(), now=clock.now(), **args)._asdict()


@blp.get("/guide/orders")
@blp.auth(Role.GUIDE)
@blp.arguments(GuideOrderArgs, location="query")
@blp.response(200, page_of(GuideOrderSchema))
def my_orders(args):
    """Orders with lines attributed to me at placement, newest first: what my lines paid and what was refunded."""
    return workbench.orders(db.session, _mine(), **args)._asdict()


@blp.get("/guide/summary")
@blp.auth(Role.GUIDE)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummarySchema)
def my_summary(args):
    """Today's visits and paid orders (the shop's day), my earnings by state, and credited per day over `days` days
    (closed days are kept once summed: the first view of a day writes them, hence the commit)."""
    guide = services.own_guide(db.session, current_actor())
    body = workbench.summary(db.session, guide, now=clock.now(), tz=settings().shop_timezone, days=args["days"])
    commit()
    return body


@blp.get("/admin/guides")
@blp.auth(*MERCHANT)
@blp.arguments(GuideListArgs, location="query")
@blp.response(200, GuideSchema(many=True))
def list_guides(args):
    """The brand's guides (a brand admin's own brand; another brand is 404)."""
    read_only()
    brand_id = reports.brand_of(current_actor(), args["brand_id"])
    return reports.guides(db.session, brand_id=brand_id, status=args["status"])


@blp.get("/admin/guides/binding-rule")
@blp.auth(*MERCHANT)
@blp.arguments(RuleArgs, location="query")
@blp.response(200, RuleReadSchema)
def read_rule(args):
    """The binding rule in force and every saved version, newest first."""
    read_only()
    brand_id = reports.brand_of(current_actor(), args["brand_id"])
    return reports.binding_rule(db.session, brand_id=brand_id, now=clock.now())


@blp.get("/admin/guides/report")
@blp.auth(*MERCHANT)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, GuideReportSchema)
def report(args):
    """Per guide over the days from `from` to `to` (the shop's days, inclusive): visits, customers bound, orders
    paid, paid GMV net of refunds, commission by state."""
    read_only()
    brand_id = reports.brand_of(current_actor(), args["brand_id"])
    tz, now = settings().shop_timezone, clock.now()
    end_day = args["end"] or now.astimezone(ZoneInfo(tz)).date()
    start_day = args["start"] or end_day - timedelta(days=29)
    start, end = (datetime.combine(d, time(), tzinfo=ZoneInfo(tz)) for d in (start_day, end_day + timedelta(days=1)))
    rows = reports.report(db.session, brand_id=brand_id, start=start, end=end, now=now)
    return {"brand_id": brand_id, "start": start_day, "end": end_day, "time_zone": tz, "guides": rows}
