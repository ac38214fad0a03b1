"""Schemathesis over every operation of the served OpenAPI document, as each role in turn (tests/fuzz_helpers.py).

Bounded here (a few derandomized cases per operation and role); `make fuzz` runs many more (MALL_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os

import pytest

from tests.fuzz_helpers import ANONYMOUS, ROLES, fuzz, seed

EXAMPLES = int(os.environ.get("MALL_FUZZ_EXAMPLES", "2"))  # per operation, role and generation mode


@pytest.mark.parametrize("role", [*ROLES, ANONYMOUS])
def test_every_operation_answers_as_documented(app, client, role, record_property):
    headers = seed(app, client)

    figures = fuzz(app, headers, role, examples=EXAMPLES, wrong_role_examples=max(1, EXAMPLES // 10))

    record_property("fuzz", figures.line(role))
    assert figures.operations > 200
    assert figures.failures == [], "\n\n".join(figures.failures)
