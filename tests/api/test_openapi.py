"""The API describes itself: OpenAPI 3.1 JSON, a browsable UI, every route under /api/v1."""


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


def test_docs_ui_is_served(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    assert b"swagger" in resp.data.lower()


def test_unknown_route_is_a_problem_document(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.json["status"] == 404 and resp.json["code"] == "route.not_found"


def test_wrong_method_is_405_problem(client):
    resp = client.delete("/api/v1/products")
    assert resp.status_code == 405
    assert resp.json["code"] == "route.method_not_allowed"
