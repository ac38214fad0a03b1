"""gunicorn.conf.py under real gunicorn: keep-alive clients beyond the workers' connection cap are served,
not left waiting in the backlog; request lines and headers past its limits are refused before the app."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gunicorn():
    """One worker of one thread holding at most four connections, with the project's config file. (gthread
    itself closes a connection after a response when worker_connections - threads others sit idle: with
    clients that send back to back, that is rare at four.)"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "1", "GUNICORN_WORKER_CONNECTIONS": "4"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--keep-alive", "30", "tests.fakes.slow_wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"gunicorn did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def clients_loop(port: int, clients: int, seconds: float) -> list[dict]:
    """`clients` keep-alive clients sending requests back to back; what each of them got."""
    results = [{"ok": 0, "closed": 0, "errors": []} for _ in range(clients)]
    stop = time.monotonic() + seconds
    start = threading.Barrier(clients)

    def run(mine: dict) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        start.wait()
        while time.monotonic() < stop:
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
            except OSError as exc:  # a timeout: never answered
                mine["errors"].append(repr(exc))
                conn.close()
                continue
            mine["ok"] += resp.status == 200
            mine["closed"] += resp.getheader("Connection", "").lower() == "close"
        conn.close()

    threads = [threading.Thread(target=run, args=(mine,)) for mine in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_clients_beyond_the_connection_cap_are_served_in_turn(gunicorn):
    results = clients_loop(gunicorn, clients=8, seconds=4)
    assert [r["errors"] for r in results] == [[]] * 8
    assert all(r["ok"] >= 5 for r in results), results  # everyone, not just the first four
    assert sum(r["closed"] for r in results) > 0  # by connections closed while others waited


def test_clients_within_the_cap_keep_their_connections(gunicorn):
    results = clients_loop(gunicorn, clients=2, seconds=1.5)
    assert all(r["ok"] >= 5 and not r["errors"] for r in results), results
    assert sum(r["closed"] for r in results) == 0


def raw_request(port: int, head: bytes) -> bytes:
    """What gunicorn answers to the request head `head` (status line and headers; up to 64 kB)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := conn.recv(65536)):
            answer += chunk
    return answer


@pytest.mark.parametrize(("path", "extra", "status"), [
    ("/" + "a" * 4000, b"", b"200"),  # within the request line limit: the app answers
    ("/" + "a" * 4100, b"", b"414"),
    ("/", b"X-Big: " + b"b" * 8000 + b"\r\n", b"200"),
    ("/", b"X-Big: " + b"b" * 8200 + b"\r\n", b"431"),
    ("/", b"".join(b"X-%d: 1\r\n" % i for i in range(101)), b"431"),
])  # fmt: skip
def test_request_lines_and_headers_past_the_limits_are_refused_by_gunicorn(gunicorn, path, extra, status):
    head = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n"
    answer = raw_request(gunicorn, head)
    assert answer.split(b" ", 2)[1] == status, answer[:200]


def test_gunicorn_names_itself_without_a_version(gunicorn):
    """gunicorn always sends `Server: gunicorn` (no setting drops it): the proxy hides it (docs/operations.md)."""
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=5)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200 and resp.getheader("Server") == "gunicorn"
