def test_health_reports_database_and_redis(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_dev_login_then_me(client, login):
    headers = login("shopper", name="amy")
    resp = client.get("/api/v1/me", headers=headers)
    assert resp.status_code == 200
    assert resp.json["role"] == "shopper"
    assert resp.json["display_name"] == "amy"
