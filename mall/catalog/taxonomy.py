"""Brands and the category tree: platform admins manage them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import events
from mall.catalog.models import Brand, Category
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.roles import Actor, Role


def _platform_only(actor: Actor) -> None:
    if actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("catalog.platform_only", "Only platform admins manage brands and categories.")


def get_brand(session: Session, brand_id: int) -> Brand:
    brand = session.get(Brand, brand_id)
    if brand is None:
        raise NotFound("brand.not_found", f"Brand {brand_id} not found.")
    return brand


def list_brands(session: Session, *, include_suspended: bool = False) -> list[Brand]:
    query = sa.select(Brand).order_by(Brand.name, Brand.id)
    if not include_suspended:
        query = query.where(Brand.status == "active")
    return list(session.scalars(query))


def create_brand(session: Session, *, actor: Actor, slug: str, name: str, **fields) -> Brand:
    _platform_only(actor)
    _check_slug_free(session, slug)
    brand = Brand(slug=slug, name=name, **fields)
    session.add(brand)
    session.flush()
    events.record(session, "brand.created", aggregate="brand", aggregate_id=brand.id, actor=actor)
    return brand


def update_brand(session: Session, *, actor: Actor, brand_id: int, **fields) -> Brand:
    _platform_only(actor)
    brand = get_brand(session, brand_id)
    if fields.get("slug", brand.slug) != brand.slug:
        _check_slug_free(session, fields["slug"])
    for name, value in fields.items():
        setattr(brand, name, value)
    session.flush()
    events.record(
        session, "brand.updated", aggregate="brand", aggregate_id=brand.id, actor=actor, fields=sorted(fields)
    )
    return brand


def _check_slug_free(session: Session, slug: str) -> None:
    if session.scalar(sa.select(Brand.id).filter_by(slug=slug)) is not None:
        raise Conflict("brand.slug_taken", f"A brand with slug {slug!r} exists.", field="slug")


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(sa.select(Category).order_by(Category.path)))


def get_category(session: Session, category_id: int) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound("category.not_found", f"Category {category_id} not found.")
    return category


def create_category(session: Session, *, actor: Actor, name: str, parent_id: int | None = None, position: int = 0):
    _platform_only(actor)
    parent_path = _parent_path(session, parent_id)
    category = Category(name=name, parent_id=parent_id, position=position)
    session.add(category)
    session.flush()
    category.path = f"{parent_path}{category.id}/"
    session.flush()
    return category


def _parent_path(session: Session, parent_id: int | None) -> str:
    if parent_id is None:
        return "/"
    parent = session.get(Category, parent_id)
    if parent is None:
        raise Invalid("category.parent_unknown", f"Parent category {parent_id} does not exist.", field="parent_id")
    return parent.path


def update_category(session: Session, *, actor: Actor, category_id: int, **fields) -> Category:
    """Rename, reorder or move a category; moving rewrites the paths of its whole subtree."""
    _platform_only(actor)
    category = get_category(session, category_id)
    if "parent_id" in fields and fields["parent_id"] != category.parent_id:
        _move(session, category, fields.pop("parent_id"))
    for name, value in fields.items():
        setattr(category, name, value)
    session.flush()
    return category


def _move(session: Session, category: Category, parent_id: int | None) -> None:
    new_prefix = f"{_parent_path(session, parent_id)}{category.id}/"
    if new_prefix.startswith(category.path):
        raise Invalid("category.cycle", "A category cannot move under itself.", field="parent_id")
    old = category.path
    session.execute(
        sa.update(Category)
        .where(Category.path.startswith(old, autoescape=True))
        .values(path=sa.literal(new_prefix) + sa.func.substr(Category.path, len(old) + 1)),
        execution_options={"synchronize_session": False},
    )
    category.parent_id = parent_id
    session.flush()  # before expiring: expire_all() would silently discard the unflushed parent_id
    session.expire_all()


def subtree_ids(session: Session, category_id: int) -> list[int]:
    category = get_category(session, category_id)
    query = sa.select(Category.id).where(Category.path.startswith(category.path, autoescape=True))
    return list(session.scalars(query))
