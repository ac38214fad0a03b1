"""Schemathesis against the served OpenAPI document, in-process (WSGI, the fast paths in front of Flask included):
every operation, as each role in turn, on the demo data (mall/demo.py), so that path ids hit real objects.

What is checked on every answer: no 500; the status, content type and body are those the document gives the
operation; and no 2xx for a role that has no right to the operation (tests/api/test_role_boundaries.py's table)
or for a caller without a token on a protected operation."""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.extensions import db
from mall import demo
from mall.catalog.models import Brand
from tests.api.test_role_boundaries import PROTECTED, PUBLIC, ROLES

ANONYMOUS = "anonymous"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Where a path parameter's real ids are (every `<int:...>` of the URL map; a new one falls back to generated ids).
PATH_TABLES = {
    "address_id": ("addresses",), "after_sale_id": ("after_sales",), "bag_id": ("live_lucky_bags",),
    "brand_id": ("brands",), "bulk_id": ("coupon_bulk_grants",), "bundle_id": ("bundles",),
    "campaign_id": ("group_campaigns",), "card_id": ("guide_rate_cards",), "category_id": ("categories",),
    "group_id": ("groups",), "guide_id": ("guides",), "line_id": ("cart_lines",), "order_id": ("orders",),
    "item_id": ("live_lineup_items", "flash_items", "points_catalogue_items"), "payout_id": ("guide_payouts",),
    "product_id": ("products",), "room_id": ("live_rooms",), "sale_id": ("flash_sales",),
    "segment_id": ("member_segments",), "shopper_id": ("users",), "sku_id": ("skus",),
    "sub_order_id": ("sub_orders",), "tag_id": ("member_tags",), "template_id": ("coupon_templates",),
    "unassigned_refund_id": ("unassigned_refunds",),
}  # fmt: skip


@dataclass
class Figures:
    operations: int = 0
    cases: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    def line(self, role: str) -> str:
        statuses = dict(sorted(self.statuses.items()))
        return (f"fuzz as {role}: {self.operations} operations, {self.cases} cases, {len(self.failures)} failures, "
                f"{self.seconds:.1f} s ({self.cpu_seconds:.1f} s CPU); statuses {statuses}")  # fmt: skip


def seed(app, client) -> dict:
    """The demo data, and headers for a user of each role (brand-scoped ones act for the first demo brand)."""
    with app.app_context():
        demo.load(db.session, env="test")
        db.session.commit()
        brand = db.session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1))
    headers = {ANONYMOUS: {}}
    for role in ROLES:
        body = {"role": role, "name": f"demo-{role.replace('_', '-')}"}
        if role in ("guide", "brand_admin"):
            body["brand_id"] = brand
        resp = client.post("/api/v1/auth/dev", json=body)
        assert resp.status_code == 200, resp.get_json()
        headers[role] = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    return headers


def real_ids(app) -> dict[str, list[int]]:
    with app.app_context():
        found = {}
        for name, tables in PATH_TABLES.items():
            ids = []
            for table in tables:
                ids += db.session.scalars(sa.text(f"SELECT id FROM {table} ORDER BY id LIMIT 50")).all()
            found[name] = ids
        db.session.remove()
        return found


def _rule(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<int:\1>", path)


REVOKING = ("/api/v1/auth/logout", "/api/v1/auth/logout-all")


def allowed(role: str, method: str, path: str) -> bool:
    key = (method.upper(), _rule(path))
    if key in PUBLIC:
        return True
    return role != ANONYMOUS and role in PROTECTED.get(key, ())


def _no_2xx_without_the_right(role: str):
    def check(ctx, response, case):
        if 200 <= response.status_code < 300 and not allowed(role, case.method, case.path):
            raise AssertionError(f"{response.status_code} for {role}, who has no right to it")

    return check


def fuzz(app, headers: dict, role: str, *, examples: int, wrong_role_examples: int = 1) -> Figures:
    """Every operation of the served document as `role`: `examples` cases each where the role may call it, as many
    in each generation mode (positive and negative); `wrong_role_examples` where it may not."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    ids = real_ids(app)
    figures = Figures()
    started, cpu = time.perf_counter(), time.process_time()
    right_check = _no_2xx_without_the_right(role)
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in sorted(operations, key=lambda op: op.path in REVOKING):  # last: they revoke the token
        figures.operations += 1
        may = allowed(role, operation.method, operation.path)
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if may else (GenerationMode.POSITIVE,)
        for mode in modes:
            _run(operation, mode, examples if may else wrong_role_examples, headers[role], ids, right_check, figures)
    figures.seconds, figures.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return figures


def _run(operation, mode, examples, headers, ids, right_check, figures) -> None:
    seen: set[str] = set()

    @hypothesis.settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode), pick=st.randoms(use_true_random=False))
    def run(case, pick: random.Random):
        figures.cases += 1
        for name in case.path_parameters or {}:
            if ids.get(name) and pick.random() < 0.8:
                case.path_parameters[name] = pick.choice(ids[name])
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"} | headers
        what = f"{operation.method.upper()} {operation.path} [{mode.value}]"
        try:
            response = case.call()
        except Exception as error:  # the in-process app let an error through: a 500 served
            if what not in seen:
                seen.add(what)
                figures.failures.append(f"{what} raised {error!r}\n  {case.as_curl_command()}")
            return
        figures.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[*CHECKS, right_check])
        except (AssertionError, FailureGroup) as error:
            what = f"{what} {response.status_code}"
            if what not in seen:
                seen.add(what)
                figures.failures.append(f"{what}: {str(error)[:1500]}\n  {case.as_curl_command()}")

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing to negate (no parameters, no body)
        run()
