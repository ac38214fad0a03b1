from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base, JSONType, Timestamped

ACTIVE = sa.text("status = 'active'")


class Brand(Timestamped, Base):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    logo_url: Mapped[str] = mapped_column(sa.String(500), default="")
    story: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")  # active | suspended


class Category(Timestamped, Base):
    """A tree kept as a materialised path ("/3/17/") so a subtree is one indexed prefix scan."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    position: Mapped[int] = mapped_column(default=0)
    path: Mapped[str] = mapped_column(sa.String(255), default="", index=True)


class Product(Timestamped, Base):
    """A product (SPU). Prices and stock live on its SKUs; price_min/max are kept here for sorting."""

    __tablename__ = "products"
    __table_args__ = (
        sa.CheckConstraint("price_min >= 0 AND price_max >= price_min", name="price_range"),
        sa.CheckConstraint("min_member_level IS NULL OR min_member_level >= 0", name="member_level"),
        # Shopper listings read active products only, in one of three orders, optionally by brand.
        sa.Index("ix_products_active_newest", "published_at", "id", postgresql_where=ACTIVE, sqlite_where=ACTIVE),
        sa.Index("ix_products_active_price", "price_min", "id", postgresql_where=ACTIVE, sqlite_where=ACTIVE),
        sa.Index("ix_products_active_sales", "sales_count", "id", postgresql_where=ACTIVE, sqlite_where=ACTIVE),
        sa.Index(
            "ix_products_active_brand_newest",
            "brand_id",
            "published_at",
            "id",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        sa.Index(
            "ix_products_active_brand_price",
            "brand_id",
            "price_min",
            "id",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        # A brand's store page by best sellers: without it, every active product of the brand is
        # read and sorted (20 ms at 100k products on SQLite), or PostgreSQL walks the global
        # sales index past other brands' products, which gets slow for a small brand.
        sa.Index(
            "ix_products_active_brand_sales",
            "brand_id",
            "sales_count",
            "id",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        sa.Index(
            "ix_products_active_category_newest",
            "category_id",
            "published_at",
            "id",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        sa.Index(
            "ix_products_active_tier_newest",
            "tier",
            "published_at",
            "id",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        sa.Index("ix_products_brand_status", "brand_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    subtitle: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    selling_points: Mapped[list] = mapped_column(JSONType, default=list)
    images: Mapped[list] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")  # draft | active | archived
    tier: Mapped[str] = mapped_column(sa.String(16), default="profit")  # traffic | hero | profit | identity
    min_member_level: Mapped[int | None]
    currency: Mapped[str] = mapped_column(sa.String(3))
    price_min: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    price_max: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sales_count: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()
    skus: Mapped[list[Sku]] = relationship(back_populates="product", order_by="Sku.id")


class Sku(Timestamped, Base):
    __tablename__ = "skus"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "spec_key"),
        sa.CheckConstraint("price >= 0", name="price_non_negative"),
        sa.CheckConstraint("list_price >= price", name="list_price_not_below_price"),
        sa.CheckConstraint("stock >= 0", name="stock_non_negative"),
        sa.Index("ix_skus_product_stock", "product_id", "stock"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    specs: Mapped[dict] = mapped_column(JSONType, default=dict)  # {"colour": "red", "size": "M"}
    spec_key: Mapped[str] = mapped_column(sa.String(255))  # rules.spec_key(specs): digest, for uniqueness
    price: Mapped[int] = mapped_column(sa.BigInteger)
    list_price: Mapped[int] = mapped_column(sa.BigInteger)
    stock: Mapped[int] = mapped_column(default=0)
    weight_grams: Mapped[int] = mapped_column(default=0)
    barcode: Mapped[str] = mapped_column(sa.String(64), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")  # active | archived

    product: Mapped[Product] = relationship(back_populates="skus")


class Bundle(Timestamped, Base):
    """Several SKUs sold together at one price (套餐); its stock is whatever its parts allow."""

    __tablename__ = "bundles"
    __table_args__ = (sa.CheckConstraint("price >= 0", name="price_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    image: Mapped[str] = mapped_column(sa.String(500), default="")
    price: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")

    brand: Mapped[Brand] = relationship()
    items: Mapped[list[BundleItem]] = relationship(back_populates="bundle", order_by="BundleItem.id")


class BundleItem(Base):
    __tablename__ = "bundle_items"
    __table_args__ = (
        sa.UniqueConstraint("bundle_id", "sku_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(sa.ForeignKey("bundles.id"))
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    quantity: Mapped[int]

    bundle: Mapped[Bundle] = relationship(back_populates="items")
    sku: Mapped[Sku] = relationship()
