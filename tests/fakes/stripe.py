"""A local stand-in for Stripe's HTTP API (PaymentIntents, Refunds, Connect Transfers), plus webhook signing.

It parses form-encoded bodies as Stripe does, honours Idempotency-Key (same key replays the first
response), and signs webhook payloads exactly as Stripe does (`t=...,v1=HMAC-SHA256(t.payload)`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """metadata[order_id]=1&payment_method_types[0]=card -> nested dicts/lists."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.transfers: dict[str, dict] = {}  # in creation order, as GET /v1/transfers lists them (newest first)
        self.idempotent: dict[str, tuple[int, dict]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.keys: list[str | None] = []  # the Idempotency-Key of every request, replays too
        self.faults: list[dict] = []  # see `fail` and `stall`
        self.unconnected: set[str] = set()  # acct_ ids Stripe answers "No such destination" for
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            (
                self.intents.clear(),
                self.refunds.clear(),
                self.transfers.clear(),
                self.idempotent.clear(),
                self.calls.clear(),
                self.keys.clear(),
            )
            self.faults.clear(), self.unconnected.clear()

    def fail(self, path: str, *, times: int = 1, status: int = 503, when=lambda params: True) -> None:
        """The next `times` requests to `path` (matching `when(params)`) answer `status`, with nothing done and
        `Stripe-Should-Retry: false`, so the client gives up at once."""
        self.faults.append({"path": path, "times": times, "status": status, "when": when, "stall": 0})

    def stall(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests to `path` are done, but answered only after `seconds` (a client with a
        shorter timeout never hears the answer)."""
        self.faults.append({"path": path, "times": times, "status": None, "when": lambda params: True,
                            "stall": seconds})  # fmt: skip

    def answer_late(self, path: str, seconds: float) -> None:
        """The next request to `path` is done at once (visible here) and answered only after `seconds`: a
        caller that dies meanwhile never hears that it was done."""
        self.faults.append({"path": path, "times": 1, "status": None, "when": lambda params: True,
                            "stall": seconds, "answer_late": True})  # fmt: skip

    def _fault(self, path: str, params: dict) -> dict | None:
        with self._lock:
            for fault in self.faults:
                if fault["times"] > 0 and fault["path"] == path and fault["when"](params):
                    fault["times"] -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, params: dict, key: str | None) -> tuple[int, dict]:
        fault = self._fault(path, params)
        if fault and fault["status"]:
            with self._lock:
                self.keys.append(key)
            return fault["status"], {"error": {"type": "api_error", "message": "Injected failure"}}
        if fault and not fault.get("answer_late"):
            time.sleep(fault["stall"])
        with self._lock:
            self.keys.append(key)
            if key and key in self.idempotent:
                return self.idempotent[key]
            self.calls.append((path, params))
            status, body = self._route(method, path, params)
            if key:
                self.idempotent[key] = (status, body)
        if fault:
            time.sleep(fault["stall"])
        return status, body

    def seed(self, key: str, body: dict) -> None:
        """What another user of the same account got for `key` (Stripe replays it for 24 hours)."""
        with self._lock:
            self.idempotent[key] = (200, body)

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        if method == "POST" and path == "/v1/payment_intents":
            intent_id = f"pi_{next(self._ids):06d}"
            intent = {"id": intent_id, "object": "payment_intent", "amount": int(params["amount"]),
                      "currency": params["currency"], "status": "requires_payment_method",
                      "client_secret": f"{intent_id}_secret_x", "metadata": params.get("metadata", {}),
                      "payment_method_types": list(params.get("payment_method_types", {}).values())}  # fmt: skip
            self.intents[intent_id] = intent
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            intent = self.intents.get(params.get("payment_intent"))
            if intent is None:
                return 400, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
            refund = {
                "id": f"re_{next(self._ids):06d}",
                "object": "refund",
                "amount": int(params["amount"]),
                "payment_intent": intent["id"],
                "status": "succeeded",
                "metadata": params.get("metadata", {}),
            }
            self.refunds[refund["id"]] = refund
            return 200, refund
        if method == "POST" and path == "/v1/transfers":
            return self._transfer(params)
        if method == "GET" and path == "/v1/transfers":
            return 200, self._list_transfers(params)
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL {path}"}}

    def _transfer(self, params: dict) -> tuple[int, dict]:
        """A Connect transfer: the destination must be a connected account (acct_...), else 400 as Stripe."""
        destination = params.get("destination", "")
        if not destination.startswith("acct_") or destination in self.unconnected:
            return 400, {"error": {"type": "invalid_request_error", "code": "account_invalid",
                                   "message": f"No such destination: '{destination}'"}}  # fmt: skip
        transfer = {"id": f"tr_{next(self._ids):06d}", "object": "transfer", "amount": int(params["amount"]),
                    "currency": params["currency"], "destination": destination, "amount_reversed": 0,
                    "reversed": False, "created": int(time.time()), "metadata": params.get("metadata", {}),
                    "reversals": {"object": "list", "data": [], "has_more": False}}  # fmt: skip
        self.transfers[transfer["id"]] = transfer
        return 200, transfer

    def _list_transfers(self, params: dict) -> dict:
        items = sorted(self.transfers.values(), key=lambda t: t["id"], reverse=True)
        since = int((params.get("created") or {}).get("gte", 0))
        items = [t for t in items if t["created"] >= since]
        if params.get("starting_after"):
            ids = [t["id"] for t in items]
            items = items[ids.index(params["starting_after"]) + 1 :] if params["starting_after"] in ids else []
        limit = int(params.get("limit", 10))
        return {"object": "list", "url": "/v1/transfers", "data": items[:limit], "has_more": len(items) > limit}

    def reverse(self, transfer_id: str, amount: int | None = None) -> dict:
        """The connected account's money taken back (a reversal made in the dashboard): the transfer as now."""
        with self._lock:
            transfer = self.transfers[transfer_id]
            transfer["amount_reversed"] += transfer["amount"] if amount is None else amount
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            return dict(transfer)

    def paid_transfers(self) -> list[dict]:
        """The transfers the connected accounts kept (not fully reversed)."""
        return [t for t in self.transfers.values() if not t["reversed"]]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                params = _nest(parse_qsl(self.rfile.read(length).decode()))
                status, body = fake.handle("POST", self.path, params, self.headers.get("Idempotency-Key"))
                payload = json.dumps(body).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out
                    self._answer(status, payload)

            def do_GET(self):
                path, _, query = self.path.partition("?")
                params = _nest(parse_qsl(query))
                status, body = fake.handle("GET", path, params, None)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(status, json.dumps(body).encode())

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_{time.time_ns()}")
                if status >= 500:
                    self.send_header("Stripe-Should-Retry", "false")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


def event(event_type: str, obj: dict, *, event_id: str | None = None) -> bytes:
    body = {"id": event_id or f"evt_{time.time_ns()}", "object": "event", "type": event_type,
            "api_version": "2025-01-27", "created": int(time.time()), "livemode": False,
            "data": {"object": obj}}  # fmt: skip
    return json.dumps(body).encode()


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
