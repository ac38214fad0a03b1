"""Settings: production refuses to start with an unsafe secret; development needs no configuration."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from mall.config import DEFAULT_SECRET, ROOT, ConfigError, Settings

GOOD_SECRET = "k" * 32


def test_development_starts_with_no_configuration_at_all():
    settings = Settings.from_env({})

    assert settings.env == "development"
    assert settings.secret_key == DEFAULT_SECRET
    assert settings.dev_login_enabled
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MALL_ENV": "production"}, "default SECRET_KEY"),
        ({"MALL_ENV": "production", "SECRET_KEY": DEFAULT_SECRET}, "default SECRET_KEY"),
        ({"MALL_ENV": "production", "SECRET_KEY": "k" * 31}, "at least 32"),
        ({"MALL_ENV": "production", "SECRET_KEY": ""}, "at least 32"),
        ({"MALL_ENV": "prod", "SECRET_KEY": GOOD_SECRET}, "MALL_ENV must be"),
    ],
    ids=["no-secret", "default-secret", "short-secret", "empty-secret", "unknown-env"],
)
def test_unsafe_production_settings_are_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


def test_production_with_a_long_secret_starts_without_dev_login():
    settings = Settings.from_env({"MALL_ENV": "production", "SECRET_KEY": GOOD_SECRET})

    assert settings.is_production
    assert not settings.dev_login_enabled


@pytest.mark.parametrize(
    "build",
    [
        lambda: Settings(env="production"),
        lambda: Settings(env="production", secret_key="short"),
        lambda: dataclasses.replace(Settings.from_env({"MALL_ENV": "production", "SECRET_KEY": GOOD_SECRET}),
                                    secret_key=DEFAULT_SECRET),
        lambda: Settings.from_env({}, env="production", secret_key="short"),
    ],
    ids=["constructed", "constructed-short", "replaced", "override"],
)  # fmt: skip
def test_settings_built_in_code_are_checked_too(build):
    with pytest.raises(ConfigError):
        build()


@pytest.mark.parametrize(("env", "enabled"), [("development", True), ("test", True), ("production", False)])
def test_dev_login_exists_only_outside_production(env, enabled):
    assert Settings.from_env({"MALL_ENV": env, "SECRET_KEY": GOOD_SECRET}).dev_login_enabled is enabled


def test_wechat_apps_are_read_from_one_variable():
    settings = Settings.from_env({"WECHAT_APPS": "wx-a:secret-a, wx-b:secret:with:colons ,"})

    assert settings.wechat_apps == {"wx-a": "secret-a", "wx-b": "secret:with:colons"}
    assert settings.wechat_default_app == "wx-a"
    chosen = Settings.from_env({"WECHAT_APPS": "wx-a:s1,wx-b:s2", "WECHAT_DEFAULT_APP": "wx-b"})
    assert chosen.wechat_default_app == "wx-b"


@pytest.mark.parametrize(
    "name", ["TOKEN_TTL_SECONDS", "ORDER_UNPAID_TIMEOUT_MINUTES", "ORDER_AUTO_CONFIRM_DAYS", "ORDER_AFTER_SALE_DAYS"]
)
def test_a_malformed_number_is_a_config_error_naming_the_variable(name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "a week"})


@pytest.mark.parametrize("ttl", ["0", "-60"])
def test_tokens_must_live_a_while(ttl):
    with pytest.raises(ConfigError, match="TOKEN_TTL_SECONDS"):
        Settings.from_env({"TOKEN_TTL_SECONDS": ttl})


def _start_wsgi(environ: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MALL_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env | environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, "too-short"], ids=["default-secret", "short-secret"])
def test_the_production_server_refuses_to_start_with_an_unsafe_secret(secret):
    result = _start_wsgi({"MALL_ENV": "production"} | ({"SECRET_KEY": secret} if secret else {}))

    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("environ", "limited"),
    [({}, True), ({"MALL_ENV": "production", "SECRET_KEY": "x" * 40}, True), ({"MALL_ENV": "test"}, False),
     ({"RATE_LIMITS": "off"}, False), ({"MALL_ENV": "test", "RATE_LIMITS": "on"}, True)],
)  # fmt: skip
def test_rate_limits_are_on_except_in_tests_and_have_an_off_switch(environ, limited):
    assert Settings.from_env(environ).rate_limited is limited
    assert Settings.from_env({}, env="test").rate_limited is False  # as the test suite builds its settings


def test_rate_limits_default_per_family_and_are_overridden_one_by_one():
    settings = Settings.from_env({"RATE_LIMIT_CLAIMS": "5 per 10 minutes"})
    assert settings.rate_limit("claims") == "5 per 10 minutes"
    assert settings.rate_limit("purchases") == "30/minute"


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"RATE_LIMITS": "maybe"}, "RATE_LIMITS"), ({"RATE_LIMIT_PURCHASES": "lots"}, "RATE_LIMIT_PURCHASES"),
     ({"RATE_LIMIT_LOGIN_IP": "5/minute;50/hour"}, "RATE_LIMIT_LOGIN_IP"), ({"PROXY_HOPS": "-1"}, "PROXY_HOPS")],
)  # fmt: skip
def test_malformed_rate_limits_are_refused_at_start(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("redis_url", "storage"),
    [("redis://10.0.0.5:6379/2", "redis://10.0.0.5:6379/2"), ("unix:///run/redis.sock?db=1", "redis+unix:///run/redis.sock?db=1")],
)  # fmt: skip
def test_the_limiter_uses_the_apps_redis_socket_or_tcp(redis_url, storage):
    from api.limits import storage_uri

    assert storage_uri(Settings.from_env({"REDIS_URL": redis_url})) == storage
    assert storage_uri(Settings.from_env({})).startswith("redis+unix://")  # the embedded server's socket


def test_the_edge_limits_and_docs_are_read_from_the_environment():
    """ADR 0036: the body limit (1 MiB by default), the docs page (on outside production) and the document."""
    default, prod = Settings.from_env({}), Settings.from_env({"MALL_ENV": "production", "SECRET_KEY": GOOD_SECRET})
    assert (default.max_body_bytes, default.api_docs_enabled, default.openapi_json) == (1024 * 1024, True, True)
    assert (prod.api_docs_enabled, prod.openapi_json) == (False, True)
    custom = Settings.from_env({"MAX_BODY_BYTES": "65536", "API_DOCS": "false", "OPENAPI_JSON": "0"})
    assert (custom.max_body_bytes, custom.api_docs_enabled, custom.openapi_json) == (65536, False, False)
    assert not Settings.from_env({"API_DOCS": "true", "OPENAPI_JSON": "false"}).api_docs_enabled  # nothing to show


@pytest.mark.parametrize(("environ", "message"), [
    ({"MAX_BODY_BYTES": "4095"}, "at least 4096"),
    ({"MAX_BODY_BYTES": "1MB"}, "MAX_BODY_BYTES must be a whole number"),
    ({"API_DOCS": "maybe"}, "API_DOCS must be true or false"),
])  # fmt: skip
def test_bad_edge_settings_are_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)
