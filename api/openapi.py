"""What the OpenAPI document says about errors: every error response of every operation is what api/errors.py
sends, an RFC 9457 problem (`application/problem+json`, the `Problem` schema), never flask-smorest's default
`application/json` or an empty body.

Done once for the whole document, from what each operation's own entry shows: `ProblemResponses` (an apispec
plugin) gives every operation the statuses its kind of operation can answer, plus those a route declares with
`blp.alt_response(status)` (its description and schema are replaced by the shared ones), plus `default` for any
other (a 500 included); `register_responses` defines those shared response components.
"""

from __future__ import annotations

from http import HTTPStatus

from apispec import BasePlugin
from flask_smorest.utils import prepare_response

PROBLEM_JSON = "application/problem+json"
DEFAULT = "DEFAULT_ERROR"  # flask-smorest's name for the `default` response of every operation

WHEN = {
    400: "The request cannot be read: malformed JSON, a missing or malformed header (e.g. Idempotency-Key).",
    401: "No bearer token, or one that is invalid, expired or revoked (see WWW-Authenticate), or bad credentials.",
    403: "The caller's role or brand may not do this, or the account is disabled.",
    404: "No such resource, or not the caller's.",
    409: "The resource's state does not allow this now (e.g. sold out, already paid, a request with this "
    "Idempotency-Key still running).",
    422: "Invalid input: `errors` names each field (wrong type, unknown field, a body where none is taken, text "
    "with a NUL or a lone UTF-16 surrogate) or the business rule that refused it.",
    429: "Too many requests: retry after the seconds in Retry-After (`rate.limited`: the caller's rate limit).",
    503: "An upstream service is unavailable: retry after the seconds in Retry-After.",
}
WRITES = {"post", "put", "patch", "delete"}
RATE_LIMITED = "x-mall-rate-limited"  # an operation's flag, read (and removed) here: see `statuses`


def register_responses(spec, schema) -> None:
    """The shared error responses, registered lazily (only those an operation uses appear)."""
    errors = [(s.name, WHEN.get(s, s.phrase)) for s in HTTPStatus if s >= 400]
    for name, description in [*errors, (DEFAULT, "Any other error (500 included), as the same problem.")]:
        response = {"description": description, "schema": schema}
        prepare_response(response, spec, PROBLEM_JSON)
        spec.components.response(name, response, lazy=True)


def statuses(path: str, method: str, operation: dict) -> set[int]:
    """The error statuses an operation can answer, from what its entry shows."""
    found = {int(s) for s in operation.get("responses", {}) if str(s)[0] in "45"}  # declared by the route
    limited = operation.pop(RATE_LIMITED, None)  # MallBlueprint.auth: True if shoppers may call it
    found.add(422)  # any operation: a query string (or body) with unstorable text; a body where none is taken
    if operation.get("security"):
        found |= {401, 403}
    if "{" in path:
        found.add(404)
    if method in WRITES:
        found.add(400)  # malformed JSON, a missing or malformed header
    if method in WRITES and operation.get("security"):
        found.add(409)  # a change a state refuses (or an Idempotency-Key still running)
    if method in WRITES and (limited if limited is not None else not operation.get("security")):
        found.add(429)  # a write by a shopper or an anonymous caller: rate-limited (api/limits.py)
    return found


class ProblemResponses(BasePlugin):
    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for method, operation in (operations or {}).items():
            if method not in WRITES | {"get", "head", "options", "trace"}:
                continue
            errors = statuses(path, method, operation)
            responses = {s: r for s, r in operation.get("responses", {}).items() if str(s)[0] not in "45"}
            responses.pop("default", None)
            operation["responses"] = responses | {str(s): HTTPStatus(s).name for s in sorted(errors)}
            operation["responses"]["default"] = DEFAULT
