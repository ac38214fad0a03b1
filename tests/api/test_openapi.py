"""The API describes itself: OpenAPI 3.1 JSON, a browsable UI, every route under /api/v1."""

import re

import pytest


def test_openapi_document_is_3_1_and_covers_every_api_route(app, client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    spec = resp.json
    assert spec["openapi"] == "3.1.0"
    assert all(path.startswith("/api/v1/") for path in spec["paths"])
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops if m != "parameters"}
    routed = {
        (str(rule.rule).replace("<int:", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed == documented
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_protected_operations_declare_bearer_auth_and_problem_responses(client):
    spec = client.get("/api/openapi.json").json
    me = spec["paths"]["/api/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(me["responses"])


def test_docs_ui_is_served_from_this_server_under_a_strict_csp(client):
    """Swagger UI's files come from the installed package (no third-party CDN); the page holds no inline code."""
    resp = client.get("/api/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "http:" not in html and "https:" not in html and "//" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)) and "<style" not in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert (resp.headers["X-Frame-Options"], resp.headers["Referrer-Policy"]) == ("DENY", "no-referrer")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assets = re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html)
    assert len(assets) == 4 and 'data-spec-url="/api/openapi.json"' in html
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200 and got.headers["X-Content-Type-Options"] == "nosniff", asset
        assert got.mimetype in ("text/javascript", "text/css", "image/png"), asset
        got.close()
    bundle = client.get("/api/docs/swagger-ui/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.get_data()
    assert client.get("/api/docs/swagger-ui/index.html").status_code == 404  # only the files the page uses


@pytest.mark.parametrize(("environ", "docs", "spec"), [
    ({"MALL_ENV": "production"}, 404, 200),
    ({"MALL_ENV": "production", "API_DOCS": "true"}, 200, 200),
    ({"MALL_ENV": "test", "API_DOCS": "false"}, 404, 200),
    ({"MALL_ENV": "production", "API_DOCS": "true", "OPENAPI_JSON": "false"}, 404, 404),
])  # fmt: skip
def test_the_docs_page_and_the_document_can_be_switched_off(app, settings, environ, docs, spec):
    from api import create_app
    from api.extensions import db
    from mall.config import Settings

    other = create_app(Settings.from_env({**environ, "SECRET_KEY": "p" * 40, "DATABASE_URL": settings.database_url,
                                          "REDIS_URL": settings.redis_url}))  # fmt: skip
    client = other.test_client()
    assert (client.get("/api/docs").status_code, client.get("/api/openapi.json").status_code) == (docs, spec)
    assert client.get("/api/docs/swagger-ui/swagger-ui.css").status_code == docs
    assert client.get("/api/v1/nothing").json["code"] == "route.not_found"  # the app itself is the same
    with other.app_context():
        db.engine.dispose()


def test_unknown_route_is_a_problem_document(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.json["status"] == 404 and resp.json["code"] == "route.not_found"


def test_wrong_method_is_405_problem(client):
    resp = client.delete("/api/v1/products")
    assert resp.status_code == 405
    assert resp.json["code"] == "route.method_not_allowed"


# ---- errors as the document describes them --------------------------------------------------------

PROBLEM_JSON = "application/problem+json"
METHODS = {"get", "post", "put", "patch", "delete"}


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, operation in ops.items():
            if method in METHODS:
                yield path, method, operation


def test_every_error_response_of_every_operation_is_a_problem_document(client):
    spec = client.get("/api/openapi.json").json
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "instance"}
    assert problem.get("additionalProperties", True) is True  # some problems carry more members
    field = _resolve(spec, problem["properties"]["errors"]["items"])
    assert set(field["required"]) == {"location", "field", "message"} and "null" in field["properties"]["field"]["type"]
    wrong = []
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("2", "3")):
                continue
            content = _resolve(spec, response).get("content", {})
            if set(content) != {PROBLEM_JSON} or content[PROBLEM_JSON]["schema"] != {
                "$ref": "#/components/schemas/Problem"
            }:
                wrong.append((method, path, status))
    assert wrong == []


def test_every_operation_lists_the_errors_its_kind_can_answer(client):
    spec = client.get("/api/openapi.json").json
    missing = []
    for path, method, operation in _operations(spec):
        expected = {"422", "default"}
        expected |= {"401", "403"} if operation.get("security") else set()
        expected |= {"404"} if "{" in path else set()
        expected |= {"400"} if method != "get" else set()
        expected |= {"409"} if method != "get" and operation.get("security") else set()
        if not expected <= set(operation["responses"]):
            missing.append((method, path, sorted(expected - set(operation["responses"]))))
    assert missing == []
    assert {"429", "503"} <= set(spec["paths"]["/api/v1/auth/wechat"]["post"]["responses"])
    assert {"401", "403"} <= set(spec["paths"]["/api/v1/auth/password"]["post"]["responses"])


def _validate(spec: dict, schema: dict, value, where: str = "$") -> list[str]:
    """The JSON Schema keywords the document uses for problems: $ref, type, required, properties, items,
    additionalProperties."""
    schema = _resolve(spec, schema)
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    python = {"object": dict, "array": list, "string": str, "integer": int, "null": type(None), "boolean": bool}
    if kinds and not any(isinstance(value, python[k]) and not (k == "integer" and value is True) for k in kinds):
        return [f"{where}: {value!r} is not {kinds}"]
    problems = []
    if isinstance(value, dict):
        problems += [f"{where}.{name}: missing" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name in schema.get("properties", {}):
                problems += _validate(spec, schema["properties"][name], item, f"{where}.{name}")
            elif schema.get("additionalProperties", True) is False:
                problems.append(f"{where}.{name}: not allowed")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += _validate(spec, schema["items"], item, f"{where}.{i}")
    return problems


def _check_against_document(spec: dict, resp, path: str, method: str) -> None:
    responses = spec["paths"][path][method]["responses"]
    documented = _resolve(spec, responses.get(str(resp.status_code), responses["default"]))
    assert str(resp.status_code) in responses, (method, path, resp.status_code)
    assert resp.headers["Content-Type"].split(";")[0] in documented["content"]
    schema = documented["content"][resp.mimetype]["schema"]
    assert _validate(spec, schema, resp.json) == [], resp.json


def test_real_error_responses_validate_against_the_document(app, client, login, fake_wechat):
    from tests.shop_helpers import Shop

    spec = client.get("/api/openapi.json").json
    shop = Shop(app, client, login)
    shopper = shop.shopper("doc-checker")
    order = shop.place(shopper, [shop.add(shopper, shop.sku(shop.brand(), price=100))], shop.address(shopper)).json
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=shopper).status_code == 200
    fake_wechat.issue_code("used", openid="o-used")
    assert client.post("/api/v1/auth/wechat", json={"code": "used"}).status_code == 200
    cases = [
        ("/api/v1/me", "get", {}, 401),
        ("/api/v1/admin/staff", "post", {"headers": shopper, "json": {}}, 403),
        ("/api/v1/me/addresses/{address_id}", "get", {"headers": shopper, "path": {"address_id": 99}}, 404),
        ("/api/v1/me/addresses", "post", {"headers": shopper, "json": {"is_default": 0}}, 422),
        ("/api/v1/me/addresses", "post", {"headers": shopper, "data": "{", "content_type": "application/json"}, 400),
        ("/api/v1/orders/{order_id}/pay", "post", {"headers": shopper, "path": {"order_id": 1}}, 400),  # no key
        (
            "/api/v1/orders/{order_id}/pay",
            "post",
            {"headers": {**shopper, "Idempotency-Key": "k"}, "path": {"order_id": order["id"]}},
            409,
        ),  # cancelled
        ("/api/v1/auth/password", "post", {"json": {"email": "x@example.com", "password": "nope"}}, 401),
        ("/api/v1/auth/wechat", "post", {"json": {"code": "rate-limited"}}, 429),
        ("/api/v1/auth/wechat", "post", {"json": {"code": "system-busy"}}, 503),
        ("/api/v1/auth/wechat", "post", {"json": {"code": "used"}}, 401),
    ]
    for path, method, kwargs, status in cases:
        url = path.format(**kwargs.pop("path", {}))
        resp = client.open(url, method=method.upper(), **kwargs)
        assert resp.status_code == status, (path, resp.json)
        _check_against_document(spec, resp, path, method)
