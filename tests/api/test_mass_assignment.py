"""Mass assignment: ids, status, prices, roles and amounts a caller adds to a write's body are refused, never
applied. Taken from the OpenAPI document: every write operation (a new one included), each field it does not
document is a 422 naming it as unknown (the parser refuses unknown fields; an operation without a body refuses
any); where brand_id is a documented field, a brand admin naming another brand is refused and nothing is written.
"""

from __future__ import annotations

import re

import schemathesis
import sqlalchemy as sa

from api.extensions import db
from mall.catalog.models import Brand
from tests.api.test_object_access import _digest, _minimal_body
from tests.api.test_role_boundaries import PLATFORM_ADMIN, PROTECTED, PUBLIC, ROLES
from tests.fuzz_helpers import seed

HOSTILE = {"id": 7, "user_id": 7, "shopper_id": 7, "status": "paid", "price": 1, "amount": 1, "total": 1,
           "role": "platform_admin", "brand_id": 7, "paid_amount": 0, "discount": 99999}  # fmt: skip
WRITES = ("post", "put", "patch", "delete")


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _documented_fields(spec: dict, operation: dict) -> set[str] | None:
    """The body's documented top-level fields; None when the body is not a JSON object."""
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return set()
    schema = _resolve(spec, content.get("application/json", {}).get("schema", {}))
    return set(schema["properties"]) if schema.get("type") == "object" and "properties" in schema else None


def _caller(login, client, rule: str, method: str) -> dict:
    key = (method.upper(), re.sub(r"\{(\w+)\}", r"<int:\1>", rule))
    if key in PUBLIC:
        return {}
    role = next(r for r in ROLES if r in PROTECTED[key])
    if role in ("guide", "brand_admin"):
        root = login(PLATFORM_ADMIN, name="mass-root")
        brand = client.post("/api/v1/admin/brands", json={"slug": f"mass-{role}".replace("_", "-"), "name": role},
                            headers=root).get_json()  # fmt: skip
        return login(role, name=f"mass-{role}", brand_id=brand["id"])
    return login(role, name=f"mass-{role}")


def test_undocumented_fields_in_every_writes_body_are_refused(app, client, login):
    spec = _spec(client)
    accepted, checked = [], 0
    callers: dict[tuple[str, str], dict] = {}
    for path, operations in spec["paths"].items():
        for method in WRITES:
            if method not in operations:
                continue
            documented = _documented_fields(spec, operations[method])
            if documented is None:
                continue
            hostile = {name: value for name, value in HOSTILE.items() if name not in documented}
            key = (method, path)
            role_key = (method.upper(), re.sub(r"\{(\w+)\}", r"<int:\1>", path))
            group = "public" if role_key in PUBLIC else next(r for r in ROLES if r in PROTECTED[role_key])
            if group not in callers:
                callers[group] = _caller(login, client, path, method)
            url = re.sub(r"\{\w+\}", "1", path)
            resp = client.open(url, method=method.upper(), json=hostile,
                               headers={**callers[group], "Idempotency-Key": f"mass-{method}-{path}"})  # fmt: skip
            checked += 1
            errors = (resp.get_json() or {}).get("errors", []) if resp.status_code == 422 else []
            unknown = {e["field"] for e in errors if e["message"] == "Unknown field."}
            if not set(hostile) <= unknown:
                accepted.append(f"{key}: {resp.status_code} {sorted(set(hostile) - unknown)} "
                                f"{resp.get_data(as_text=True)[:200]}")  # fmt: skip
    assert checked > 100
    assert accepted == [], "\n".join(accepted)


def test_a_brand_admin_naming_another_brand_in_a_documented_brand_id_is_refused(app, client):
    """Every write whose body documents brand_id and that a brand admin may call: the admin of the first demo brand
    sends the smallest body the document accepts (its ids name the demo's first objects, of its own brand) with
    brand_id the second demo brand's: refused, and nothing written."""
    headers = seed(app, client)
    with app.app_context():
        own, other = db.session.scalars(sa.select(Brand.id).order_by(Brand.id).limit(2)).all()
    spec = _spec(client)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    wrong, checked = [], 0
    for path, operations in spec["paths"].items():
        for method in WRITES:
            rule = re.sub(r"\{(\w+)\}", r"<int:\1>", path)
            if method not in operations or "brand_admin" not in PROTECTED.get((method.upper(), rule), ()):
                continue
            if "brand_id" not in (_documented_fields(spec, operations[method]) or ()):
                continue
            body = {**(_minimal_body(schema, method.upper(), rule) or {}), "brand_id": other}
            with app.app_context():
                before = _digest()
            resp = client.open(re.sub(r"\{\w+\}", "1", path), method=method.upper(), json=body,
                               headers={**headers["brand_admin"], "Idempotency-Key": f"brand-{method}-{path}"})  # fmt: skip
            with app.app_context():
                changed = [name for name, digest in _digest().items() if before[name] != digest]
                db.session.remove()
            checked += 1
            if resp.status_code < 300 or changed:
                wrong.append(f"{method} {path} {body}: {resp.status_code} changed {changed}")
    assert own != other and checked > 10
    assert wrong == [], "\n".join(wrong)
