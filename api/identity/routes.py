"""Logins (WeChat mini-program, staff password, dev), the caller's profile and addresses."""

from __future__ import annotations

import functools

from flask import abort

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.identity.schemas import (
    AddressSchema,
    DevLoginSchema,
    PasswordLoginSchema,
    StaffCreateSchema,
    TokenSchema,
    UserSchema,
    WeChatLoginSchema,
)  # fmt: skip
from api.settings import settings, wechat_client
from api.tx import commit
from mall.identity import services, tokens
from mall.identity.models import User
from mall.identity.roles import Role

blp = MallBlueprint("identity", __name__, description="Log in, profile, addresses, staff accounts")


def _token_response(user: User) -> dict:
    token, ttl = tokens.issue(user, secret=settings().secret_key, ttl_seconds=settings().token_ttl_seconds)
    return {"token": token, "token_type": "Bearer", "expires_in": ttl, "user": user}


@blp.post("/auth/wechat")
@blp.problems(401, 403, 429, 503)  # WeChat refused the code or the user, or is busy or down
@blp.arguments(WeChatLoginSchema)
@blp.response(200, TokenSchema)
def wechat_login(body):
    """Exchange a wx.login() code for the platform's bearer token (shoppers)."""
    app_id = body["app_id"] or settings().wechat_default_app
    user = services.login_with_wechat(db.session, wechat=wechat_client(), app_id=app_id, code=body["code"],
                                      channel=body["channel"])  # fmt: skip
    commit()
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
    commit()
    return _token_response(user)


@blp.post("/auth/logout-all")
@blp.auth()
@blp.response(204)
def logout_everywhere():
    """Revoke every token of the caller."""
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
