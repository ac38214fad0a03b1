from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base, Timestamped


class User(Timestamped, Base):
    """Anyone with a token: shoppers from the mini-program and staff (hosts, guides, admins)."""

    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("member_level >= 0", name="member_level_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(32), index=True)
    display_name: Mapped[str] = mapped_column(sa.String(80), default="")
    brand_id: Mapped[int | None] = mapped_column(sa.ForeignKey("brands.id"), index=True)
    member_level: Mapped[int] = mapped_column(default=0)
    birthday: Mapped[date | None]  # birthday-month coupons
    email: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    # Bumped to revoke every token issued before (log out everywhere, staff removal).
    token_version: Mapped[int] = mapped_column(default=1)

    wechat_accounts: Mapped[list[WeChatAccount]] = relationship(back_populates="user")


class WeChatAccount(Timestamped, Base):
    """One per (mini-program app id, openid). Accounts sharing a unionid belong to one user."""

    __tablename__ = "wechat_accounts"
    __table_args__ = (sa.UniqueConstraint("app_id", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    app_id: Mapped[str] = mapped_column(sa.String(64))
    openid: Mapped[str] = mapped_column(sa.String(128))
    unionid: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    # Kept server-side only (needed later to decrypt phone numbers); never serialised.
    session_key: Mapped[str] = mapped_column(sa.String(128))
    last_login_at: Mapped[datetime]

    user: Mapped[User] = relationship(back_populates="wechat_accounts")


class Address(Timestamped, Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    recipient: Mapped[str] = mapped_column(sa.String(60))
    phone: Mapped[str] = mapped_column(sa.String(32))
    province: Mapped[str] = mapped_column(sa.String(40))
    city: Mapped[str] = mapped_column(sa.String(40))
    district: Mapped[str] = mapped_column(sa.String(40), default="")
    detail: Mapped[str] = mapped_column(sa.String(200))
    postal_code: Mapped[str] = mapped_column(sa.String(12), default="")
    is_default: Mapped[bool] = mapped_column(default=False)


# What an order keeps of the address it ships to (a copy: the shopper may edit or delete the address later).
SHIPPING_FIELDS = ("recipient", "phone", "province", "city", "district", "detail", "postal_code")


class RefreshToken(Base):
    """One refresh token (ADR 0032): stored as its SHA-256 only, used once. Every rotation adds a row to the login's
    family (`family`, the access tokens' `sid` claim); a used row shown again revokes the whole family. `access_jti`
    and `access_expires_at`: the access token issued with this one, denied too when the family is revoked."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        sa.Index("ix_refresh_tokens_family_expires", "family_expires_at"),
    )  # retention (mall/retention.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(sa.String(32), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    token_version: Mapped[int]  # the user's at issue: a later logout-all or disable outdates it
    access_jti: Mapped[str] = mapped_column(sa.String(32))
    access_expires_at: Mapped[datetime]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    family_expires_at: Mapped[datetime]  # the login's absolute limit, whatever the rotations
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
