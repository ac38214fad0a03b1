"""Logins (WeChat mini-program, staff password, dev), the caller's profile and addresses."""

from __future__ import annotations

import functools

from flask import abort, g

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.identity.schemas import (
    AddressSchema,
    DevLoginSchema,
    PasswordLoginSchema,
    RefreshSchema,
    StaffCreateSchema,
    TokenSchema,
    UserSchema,
    WeChatLoginSchema,
)  # fmt: skip
from api.settings import settings, wechat_client
from api.tx import commit
from mall.identity import refresh, services, tokens
from mall.identity.models import User
from mall.identity.roles import Role

blp = MallBlueprint("identity", __name__, description="Log in, profile, addresses, staff accounts")


def _lifetimes(access: int | None = None) -> refresh.Lifetimes:
    s = settings()
    return refresh.Lifetimes(access or s.token_ttl_seconds, s.refresh_ttl_seconds, s.refresh_max_seconds)


def _answer(grant: refresh.Grant) -> dict:
    return {"token": grant.access_token, "token_type": "Bearer", "expires_in": grant.expires_in,
            "refresh_token": grant.refresh_token, "refresh_expires_in": grant.refresh_expires_in,
            "user": grant.user}  # fmt: skip


def _token_response(user: User, access_ttl: int | None = None) -> dict:
    """A new login: an access token and the first refresh token of its family, committed."""
    grant = refresh.start(db.session, user, secret=settings().secret_key, lifetimes=_lifetimes(access_ttl))
    commit()
    return _answer(grant)


@blp.post("/auth/wechat")
@blp.problems(401, 403, 429, 503)  # WeChat refused the code or the user, or is busy or down
@blp.arguments(WeChatLoginSchema)
@blp.response(200, TokenSchema)
def wechat_login(body):
    """Exchange a wx.login() code for the platform's bearer token (shoppers)."""
    app_id = body["app_id"] or settings().wechat_default_app
    user = services.login_with_wechat(db.session, wechat=wechat_client(), app_id=app_id, code=body["code"],
                                      channel=body["channel"])  # fmt: skip
    return _token_response(user)


@blp.post("/auth/password")
@blp.problems(401, 403)  # bad credentials, a disabled account
@blp.arguments(PasswordLoginSchema)
@blp.response(200, TokenSchema)
def password_login(body):
    """Staff log in with email and password."""
    return _token_response(services.password_login(db.session, **body))


def _dev_only(view):
    """In production the route answers 404 like an unknown one, before its body is even read."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not settings().dev_login_enabled:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


@blp.post("/auth/dev")
@blp.problems(404)  # in production
@_dev_only
@blp.arguments(DevLoginSchema)
@blp.response(200, TokenSchema)
def dev_login(body):
    """Development and test only: a token for any role. 404 in production."""
    user = services.dev_login(db.session, role=Role(body["role"]), name=body["name"], brand_id=body["brand_id"])
    return _token_response(user, access_ttl=settings().dev_token_ttl_seconds)  # long-lived: tests run long flows


@blp.post("/auth/refresh")
@blp.problems(401)  # unknown, expired, used or revoked refresh token; a disabled or removed user
@blp.arguments(RefreshSchema)
@blp.response(200, TokenSchema)
def refresh_tokens(body):
    """Trade a refresh token for a new access token and a new refresh token (the old one is used up). Showing a
    used refresh token again revokes that login: every token of it, on every device."""
    try:
        grant = refresh.rotate(db.session, body["refresh_token"], secret=settings().secret_key, lifetimes=_lifetimes())
    except refresh.Reused:
        commit()  # the family's revocation stands, though the answer is a refusal
        raise
    commit()
    return _answer(grant)


@blp.post("/auth/logout")
@blp.auth()
@blp.response(204)
def logout():
    """Revoke the access token sent, at once, and the refresh tokens of its login (other logins keep working)."""
    claims = g.token_claims
    tokens.deny({claims["jti"]: float(claims["exp"])})
    if claims.get("sid"):
        refresh.revoke_family(db.session, claims["sid"])
    commit()


@blp.post("/auth/logout-all")
@blp.auth()
@blp.response(204)
def logout_everywhere():
    """Revoke every token of the caller: access tokens and refresh tokens, of every login."""
    services.revoke_tokens(db.session, user_id=current_actor().user_id)
    commit()


@blp.get("/me")
@blp.auth()
@blp.response(200, UserSchema)
def me():
    return db.session.get(User, current_actor().user_id)


@blp.post("/admin/staff")
@blp.auth(Role.PLATFORM_ADMIN, Role.BRAND_ADMIN)
@blp.arguments(StaffCreateSchema)
@blp.response(201, UserSchema)
def create_staff(body):
    """Platform admins create any staff; brand admins create their own brand's hosts and guides."""
    user = services.create_staff(db.session, actor=current_actor(), role=Role(body.pop("role")), **body)
    commit()
    return user


def _set_active(user_id: int, active: bool) -> User:
    user = services.set_user_active(db.session, actor=current_actor(), user_id=user_id, active=active)
    commit()
    return user


@blp.post("/admin/users/<int:user_id>/disable")
@blp.auth(Role.PLATFORM_ADMIN, Role.BRAND_ADMIN)
@blp.problems(404, 409)
@blp.response(200, UserSchema)
def disable_user(user_id):
    """Disable an account: its tokens stop working at once, everywhere, and it cannot log in or refresh. Platform
    admins disable anyone but themselves; brand admins their own brand's hosts and guides."""
    return _set_active(user_id, False)


@blp.post("/admin/users/<int:user_id>/enable")
@blp.auth(Role.PLATFORM_ADMIN, Role.BRAND_ADMIN)
@blp.problems(404, 409)
@blp.response(200, UserSchema)
def enable_user(user_id):
    """Let a disabled account log in again (its old tokens stay revoked)."""
    return _set_active(user_id, True)


@blp.get("/me/addresses")
@blp.auth(Role.SHOPPER)
@blp.response(200, AddressSchema(many=True))
def list_addresses():
    return services.list_addresses(db.session, user_id=current_actor().user_id)


@blp.post("/me/addresses")
@blp.auth(Role.SHOPPER)
@blp.arguments(AddressSchema)
@blp.response(201, AddressSchema)
def add_address(body):
    address = services.save_address(db.session, user_id=current_actor().user_id, **body)
    commit()
    return address


@blp.get("/me/addresses/<int:address_id>")
@blp.auth(Role.SHOPPER)
@blp.response(200, AddressSchema)
def get_address(address_id):
    return services.get_address(db.session, user_id=current_actor().user_id, address_id=address_id)


@blp.patch("/me/addresses/<int:address_id>")
@blp.auth(Role.SHOPPER)
@blp.arguments(AddressSchema(partial=True))
@blp.response(200, AddressSchema)
def update_address(body, address_id):
    address = services.save_address(db.session, user_id=current_actor().user_id, address_id=address_id, **body)
    commit()
    return address


@blp.delete("/me/addresses/<int:address_id>")
@blp.auth(Role.SHOPPER)
@blp.response(204)
def delete_address(address_id):
    services.delete_address(db.session, user_id=current_actor().user_id, address_id=address_id)
    commit()
