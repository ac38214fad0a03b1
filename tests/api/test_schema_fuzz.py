"""Schemathesis over every operation of the served OpenAPI document, as each role in turn (tests/fuzz_helpers.py).

Bounded here (a few derandomized cases per operation and role); `make fuzz` runs many more (MALL_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os

import pytest

from tests.fuzz_helpers import ANONYMOUS, ROLES, fuzz, seed

EXAMPLES = int(os.environ.get("MALL_FUZZ_EXAMPLES", "3"))


@pytest.mark.parametrize("role", [*ROLES, ANONYMOUS])
def test_every_operation_answers_as_documented(app, client, role, record_property):
    headers = seed(app, client)

    figures = fuzz(app, headers, role, examples=EXAMPLES)

    record_property("fuzz", figures.line(role))
    print(figures.line(role))
    assert figures.operations > 200
    assert figures.failures == [], "\n\n".join(figures.failures)
