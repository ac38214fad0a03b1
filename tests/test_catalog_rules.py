"""Catalog rules tested directly: who may buy an identity product, what makes two SKUs the same."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.tx import commit
from mall.catalog import rules, services, taxonomy
from mall.errors import Forbidden, Invalid
from mall.identity.models import User
from mall.identity.roles import Actor, Role


@pytest.fixture
def make_product(session):
    admin = Actor(user_id=0, role=Role.PLATFORM_ADMIN)
    brand = taxonomy.create_brand(session, actor=admin, slug="rules", name="Rules")
    category = taxonomy.create_category(session, actor=admin, name="Rules")

    def make(tier: str, min_member_level: int | None = None):
        product = services.create_product(
            session, actor=admin, brand_id=brand.id, currency="CNY", category_id=category.id, title=f"{tier} pick",
            tier=tier, min_member_level=min_member_level, skus=[{"specs": {"size": "M"}, "price": 1000}],
        )  # fmt: skip
        commit()
        return product

    return make


def _shopper(session, level: int) -> User:
    user = User(role=Role.SHOPPER, display_name=f"level-{level}", member_level=level)
    session.add(user)
    commit()
    return user


@pytest.mark.parametrize("level", [0, 1, 2])
def test_members_below_the_level_cannot_buy_an_identity_product(session, make_product, level):
    product = make_product("identity", min_member_level=3)
    shopper = _shopper(session, level)
    with pytest.raises(Forbidden) as refused:
        rules.ensure_can_buy(member_level=shopper.member_level, product=product)
    assert refused.value.code == "product.member_level_too_low"
    assert refused.value.extra == {"required_level": product.min_member_level}


@pytest.mark.parametrize("level", [3, 4, 100])
def test_members_at_or_above_the_level_can_buy_an_identity_product(session, make_product, level):
    product = make_product("identity", min_member_level=3)
    rules.ensure_can_buy(member_level=_shopper(session, level).member_level, product=product)


@pytest.mark.parametrize("tier", ["traffic", "hero", "profit"])
def test_anyone_can_buy_other_tiers(session, make_product, tier):
    product = make_product(tier)
    rules.ensure_can_buy(member_level=_shopper(session, 0).member_level, product=product)


def test_tier_and_member_level_go_together():
    rules.check_tier("identity", 0)
    rules.check_tier("profit", None)
    with pytest.raises(Invalid, match="minimum member level"):
        rules.check_tier("identity", None)
    with pytest.raises(Invalid, match="Only identity"):
        rules.check_tier("hero", 1)


# ---- spec keys ----------------------------------------------------------------------------------------

names = st.text(alphabet="abcdefgXYZ颜色尺码 ", min_size=1, max_size=8).filter(lambda s: s.strip())
specs = st.dictionaries(names, names, max_size=5).filter(
    lambda d: len({k.strip().casefold() for k in d}) == len(d)  # names must differ beyond case and spaces
)


def _respell(specs: dict, data) -> dict:
    """The same specs in another order, case and padding."""
    items = data.draw(st.permutations(list(specs.items())))
    case = data.draw(st.sampled_from([str.upper, str.lower, str.title, lambda s: f"  {s} "]))
    return {case(k): case(v) for k, v in items}


@given(specs=specs, data=st.data())
def test_spec_key_ignores_order_case_and_padding(specs, data):
    assert rules.spec_key(_respell(specs, data)) == rules.spec_key(specs)


@given(first=specs, second=specs)
def test_different_specs_have_different_keys(first, second):
    def canonical(d):
        return sorted((k.strip().casefold(), v.strip().casefold()) for k, v in d.items())

    assert (rules.spec_key(first) == rules.spec_key(second)) == (canonical(first) == canonical(second))


@pytest.mark.parametrize("bad", [{"Size": "M", "size": "L"}, {"size": "  "}, {" ": "M"}])
def test_ambiguous_or_blank_specs_are_invalid(bad):
    with pytest.raises(Invalid) as refused:
        rules.spec_key(bad)
    assert refused.value.code == "sku.specs_invalid"
