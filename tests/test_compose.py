"""compose.yaml and the Dockerfile (no docker here): the containers run exactly the commands `make run` runs
(scripts/run_local.py), those commands name modules and files that exist, and the migrations finish before
anything that uses the schema starts."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
URL = "redis://redis:6379/0"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


LOCAL_URL = "redis://127.0.0.1:6399/9"  # what `make run` would be given; the containers use the compose Redis


@pytest.fixture
def local(monkeypatch) -> dict[str, list[str]]:
    monkeypatch.setenv("REDIS_URL", LOCAL_URL)
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module("run_local").commands("8000", "8001")


def _plain(argv: list[str]) -> list[str]:
    """A command as a container spells it: programs by name, the container's Redis URL, the image's /app."""
    first = "python" if argv[0] == sys.executable else Path(argv[0]).name
    return [first, *(URL if a == LOCAL_URL else "/app" if a == str(ROOT) else a for a in argv[1:])]


def test_every_process_of_make_run_is_a_service_with_the_same_command(compose, local):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "stream", "worker", "cron"}
    names = {"api": "api", "stream": "stream", "worker": "worker", "cron": "cron"}
    for process, service in names.items():
        assert services[service]["command"] == _plain(local[process]), service


def test_the_services_reach_the_compose_postgres_and_redis(compose):
    env = compose["services"]["api"]["environment"]
    assert env["REDIS_URL"] == URL and "@postgres:5432/" in env["DATABASE_URL"]
    for service in ("migrate", "api", "stream", "worker", "cron"):
        assert compose["services"][service]["environment"] == env, service  # one environment for all
        assert compose["services"][service]["image"] == "mall:latest"


def test_migrations_run_once_before_anything_uses_the_schema(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert "$(BIN)/flask --app wsgi" in (ROOT / "Makefile").read_text()  # `make migrate` runs the same
    for service in ("api", "stream", "worker", "cron"):
        depends = services[service]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, service
        assert depends["postgres"] == {"condition": "service_healthy"}, service


def test_the_commands_name_modules_and_files_that_exist(compose):
    services = compose["services"]
    assert importlib.util.find_spec("wsgi") is not None  # gunicorn wsgi:app, flask --app wsgi
    assert re.search(r"^app = create_app\(\)", (ROOT / "wsgi.py").read_text(), re.M)
    stream = services["stream"]["command"]
    assert stream[:3] == ["python", "-m", "api.live.stream"]
    assert hasattr(importlib.import_module("api.live.stream"), "main")
    worker = services["worker"]["command"]
    module, _, name = worker[worker.index("-w") + 1].rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), name), type)
    cron = services["cron"]["command"]
    assert (ROOT / cron[2]).is_file() and cron[cron.index("--path") + 1] == "/app"


def test_the_image_runs_the_api_by_default_with_the_pinned_requirements(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd == compose["services"]["api"]["command"]
    assert "COPY requirements.txt" in dockerfile and "pip install -r requirements.txt" in dockerfile
    assert "WORKDIR /app" in dockerfile and re.search(r"^USER (?!root)", dockerfile, re.M)
    assert ".env" in (ROOT / ".dockerignore").read_text().split()  # secrets stay out of the image
