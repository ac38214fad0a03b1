"""Identity use cases: logins, staff accounts and a shopper's addresses."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from mall import clock, events
from mall.db import insert_on_conflict
from mall.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from mall.identity import refresh
from mall.identity.models import Address, User, WeChatAccount
from mall.identity.roles import BRAND_SCOPED, Actor, Role
from mall.identity.wechat import WeChatClient, WeChatSession


def login_with_wechat(
    session: Session, *, wechat: WeChatClient, app_id: str, code: str, channel: str | None = None
) -> User:  # fmt: skip
    """One shopper per (app id, openid); a known unionid attaches the new app to that shopper. `channel`: the
    channel parameter the mini-program was opened with (a poster, a campaign), kept on the sign-up event."""
    ws = wechat.code2session(app_id, code)
    account = _wechat_account(session, app_id, ws.openid) or _first_login(session, app_id, ws, channel)
    account.session_key = ws.session_key
    account.unionid = ws.unionid or account.unionid
    account.last_login_at = clock.now()
    session.flush()
    if account.user.role != Role.SHOPPER or account.user.status != "active":
        raise Forbidden("auth.account_disabled", "This account cannot log in to the mini-program.")
    return account.user


def _wechat_account(session: Session, app_id: str, openid: str) -> WeChatAccount | None:
    return session.scalar(sa.select(WeChatAccount).filter_by(app_id=app_id, openid=openid))


def _first_login(session: Session, app_id: str, ws: WeChatSession, channel: str | None = None) -> WeChatAccount:
    """The account for a first login. wx.login() can fire twice at launch: when two first logins
    race, the account insert that loses the race writes nothing and both use the winner's shopper."""
    user = _user_for_unionid(session, ws.unionid)
    new_shopper = user is None
    if new_shopper:
        user = User(role=Role.SHOPPER, display_name="")
        session.add(user)
        session.flush()
    now = clock.now()
    inserted = insert_on_conflict(
        session,
        WeChatAccount.__table__,
        values={"user_id": user.id, "app_id": app_id, "openid": ws.openid, "unionid": ws.unionid,
                "session_key": ws.session_key, "last_login_at": now, "created_at": now, "updated_at": now},
        index_elements=["app_id", "openid"],
    )  # fmt: skip
    if new_shopper and inserted:
        extra = {"channel": channel} if channel else {}
        events.record(session, "shopper.signed_up", aggregate="user", aggregate_id=user.id, **extra)
    elif new_shopper:
        session.delete(user)  # the concurrent login made the shopper
        session.flush()
    return _wechat_account(session, app_id, ws.openid)


def _user_for_unionid(session: Session, unionid: str | None) -> User | None:
    if not unionid:
        return None
    query = sa.select(User).join(WeChatAccount).where(WeChatAccount.unionid == unionid).limit(1)
    return session.scalar(query)


def dev_login(session: Session, *, role: Role, name: str, brand_id: int | None) -> User:
    """Development/test only (the edge hides it in production): a user of any role, by name."""
    _check_brand_scope(session, role, brand_id)
    user = session.scalar(sa.select(User).filter_by(role=role, display_name=name, brand_id=brand_id))
    if user is None:
        user = User(role=role, display_name=name, brand_id=brand_id)
        session.add(user)
        session.flush()
        if role == Role.SHOPPER:
            events.record(session, "shopper.signed_up", aggregate="user", aggregate_id=user.id)
    return user


def _check_brand_scope(session: Session, role: Role, brand_id: int | None) -> None:
    if role in BRAND_SCOPED and brand_id is None:
        raise Invalid("auth.brand_required", f"A {role} acts for one brand: give brand_id.", field="brand_id")
    if role in (Role.SHOPPER, Role.PLATFORM_ADMIN) and brand_id is not None:
        raise Invalid("auth.brand_not_allowed", f"A {role} belongs to no brand.", field="brand_id")
    if brand_id is not None:
        from mall.catalog.models import Brand

        if session.get(Brand, brand_id) is None:
            raise Invalid("auth.brand_unknown", f"Brand {brand_id} does not exist.", field="brand_id")


def create_staff(
    session: Session, *, actor: Actor, role: Role, name: str, email: str, password: str, brand_id: int | None
) -> User:
    """Platform admins create any staff; a brand admin creates hosts and guides of their own brand."""
    if role == Role.SHOPPER:
        raise Invalid("staff.role_invalid", "Shoppers sign up through the mini-program.", field="role")
    if actor.role != Role.PLATFORM_ADMIN and not (
        actor.role == Role.BRAND_ADMIN and role in (Role.HOST, Role.GUIDE) and brand_id == actor.brand_id
    ):
        raise Forbidden("staff.forbidden", "You may not create this staff account.")
    _check_brand_scope(session, role, brand_id)
    email = email.strip().lower()
    if session.scalar(sa.select(User.id).filter_by(email=email)) is not None:
        raise Invalid("staff.email_taken", "Another account uses this email.", field="email")
    user = User(role=role, display_name=name, email=email, brand_id=brand_id)
    user.password_hash = generate_password_hash(password)
    session.add(user)
    session.flush()
    events.record(session, "staff.created", aggregate="user", aggregate_id=user.id, actor=actor, role=role)
    return user


def password_login(session: Session, *, email: str, password: str) -> User:
    """One hash verification whoever asks (an unknown email or an account without a password is checked
    against a dummy hash), so the answer's timing does not tell which emails have an account."""
    user = session.scalar(sa.select(User).filter_by(email=email.strip().lower()))
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    matches = check_password_hash(stored, password)
    if user is None or not user.password_hash or not matches:
        raise Unauthorized("auth.bad_credentials", "Email or password is wrong.")
    if user.status != "active":
        raise Forbidden("auth.account_disabled", "This account is disabled.")
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash made like the real ones (same method and cost), once per process, of a password nobody has."""
    return generate_password_hash("no account has this password")


def revoke_tokens(session: Session, *, user_id: int) -> None:
    """Log out everywhere: every access token (a new token_version) and every refresh token of the user."""
    session.execute(sa.update(User).where(User.id == user_id).values(token_version=User.token_version + 1))
    refresh.revoke_user(session, user_id)


def set_user_active(session: Session, *, actor: Actor, user_id: int, active: bool) -> User:
    """Disable or enable an account. Platform admins manage anyone but themselves; a brand admin manages their own
    brand's hosts and guides (anyone else is reported as missing). Disabling revokes every token of the user at
    once (a new token_version: enabling again does not bring old tokens back) and makes logins refuse them."""
    user = session.get(User, user_id, with_for_update=True)
    manages = user is not None and (
        actor.role == Role.PLATFORM_ADMIN
        or (actor.role == Role.BRAND_ADMIN and user.role in (Role.HOST, Role.GUIDE) and user.brand_id == actor.brand_id)
    )
    if not manages:
        raise NotFound("user.not_found", f"User {user_id} not found.")
    if user.id == actor.user_id:
        raise Conflict("user.self_disable", "You cannot disable or enable your own account.")
    status = "active" if active else "disabled"
    if user.status == status:
        return user  # already so: nothing to revoke or record again
    user.status = status
    if not active:
        user.token_version += 1
        refresh.revoke_user(session, user.id)
    session.flush()  # through the unit of work: the token cache is tombstoned before the change is written
    events.record(session, f"user.{'enabled' if active else 'disabled'}", aggregate="user", aggregate_id=user.id,
                  actor=actor)  # fmt: skip
    return user


def list_addresses(session: Session, *, user_id: int) -> list[Address]:
    query = sa.select(Address).filter_by(user_id=user_id).order_by(Address.is_default.desc(), Address.id)
    return list(session.scalars(query))


def get_address(session: Session, *, user_id: int, address_id: int) -> Address:
    """Another shopper's address is reported as missing, never as forbidden."""
    address = session.get(Address, address_id)
    if address is None or address.user_id != user_id:
        raise address_not_found(address_id)
    return address


def address_not_found(address_id: int) -> NotFound:
    return NotFound("address.not_found", f"Address {address_id} not found.")


def save_address(session: Session, *, user_id: int, address_id: int | None = None, **fields) -> Address:
    _lock_address_book(session, user_id)
    if address_id is None:
        address = Address(user_id=user_id)
        session.add(address)
    else:
        address = get_address(session, user_id=user_id, address_id=address_id)
    for name, value in fields.items():
        setattr(address, name, value)
    session.flush()
    _keep_one_default(session, address)
    return address


def _lock_address_book(session: Session, user_id: int) -> None:
    """One writer per shopper's addresses at a time, so concurrent saves cannot make two defaults."""
    session.execute(sa.select(User.id).where(User.id == user_id).with_for_update())


def _keep_one_default(session: Session, address: Address) -> None:
    """A shopper has exactly one default address: the newest one asked for, else the first."""
    others = (Address.user_id == address.user_id, Address.id != address.id)
    if address.is_default:
        session.execute(sa.update(Address).where(*others).values(is_default=False))
    elif session.scalar(sa.select(Address.id).where(*others, Address.is_default).limit(1)) is None:
        address.is_default = True
    session.flush()


def delete_address(session: Session, *, user_id: int, address_id: int) -> None:
    """Deleting the default makes the oldest remaining address the default."""
    _lock_address_book(session, user_id)
    address = get_address(session, user_id=user_id, address_id=address_id)
    was_default = address.is_default
    session.delete(address)
    session.flush()
    if was_default:
        successor = session.scalar(sa.select(Address).filter_by(user_id=user_id).order_by(Address.id).limit(1))
        if successor is not None:
            successor.is_default = True
            session.flush()


def bootstrap_platform_admin(session: Session, *, email: str, name: str, password: str) -> User:
    """The first platform admin, from the command line (no actor exists yet)."""
    email = email.strip().lower()
    user = session.scalar(sa.select(User).filter_by(email=email))
    if user is None:
        user = User(role=Role.PLATFORM_ADMIN, display_name=name, email=email)
        session.add(user)
    elif user.role != Role.PLATFORM_ADMIN:
        raise Invalid("staff.email_taken", "Another account uses this email.", field="email")
    user.password_hash = generate_password_hash(password)
    session.flush()
    return user
