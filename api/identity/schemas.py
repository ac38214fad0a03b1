from marshmallow import Schema, fields, validate

from api.fields import Bool, Id
from mall.identity.roles import Role

ROLES = [r.value for r in Role]


class Trimmed(fields.String):
    """Text without surrounding spaces, so a blank value fails a minimum length."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class TrimmedEmail(fields.Email):
    """An email address; the spaces phone keyboards add around it are dropped before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value.strip() if isinstance(value, str) else value, attr, data, **kwargs)


class WeChatLoginSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(1, 128))
    app_id = fields.String(load_default=None, validate=validate.Length(1, 64))
    # The channel parameter the mini-program was opened with (scene / query), kept as the member's first touch.
    channel = fields.String(load_default=None, validate=validate.Length(1, 64))


class DevLoginSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(required=True, validate=validate.Length(1, 80))
    brand_id = Id(load_default=None)


class PasswordLoginSchema(Schema):
    email = TrimmedEmail(required=True)
    password = fields.String(required=True, validate=validate.Length(1, 200), load_only=True)


class UserSchema(Schema):
    id = fields.Integer()
    role = fields.String()
    display_name = fields.String()
    brand_id = fields.Integer(allow_none=True)
    member_level = fields.Integer()
    status = fields.String(metadata={"description": "`active`, or `disabled` (no login, every token refused)."})


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "The access token (a bearer JWT)."})
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "Seconds the access token lives."})
    refresh_token = fields.String(
        metadata={"description": "Opaque, single use: POST it to /auth/refresh for a new pair before it expires."}
    )
    refresh_expires_in = fields.Integer(metadata={"description": "Seconds the refresh token lives if unused."})
    user = fields.Nested(UserSchema)


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))


class StaffCreateSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf([r for r in ROLES if r != Role.SHOPPER]))
    name = Trimmed(required=True, validate=validate.Length(1, 80))
    email = TrimmedEmail(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(10, 200))
    brand_id = Id(load_default=None)


class AddressSchema(Schema):
    id = fields.Integer(dump_only=True)
    recipient = Trimmed(required=True, validate=validate.Length(1, 60))
    phone = Trimmed(required=True, validate=validate.Regexp(r"^\+?[0-9][0-9 -]{5,30}$"))
    province = Trimmed(required=True, validate=validate.Length(1, 40))
    city = Trimmed(required=True, validate=validate.Length(1, 40))
    district = Trimmed(load_default="", validate=validate.Length(0, 40))
    detail = Trimmed(required=True, validate=validate.Length(1, 200))
    postal_code = Trimmed(load_default="", validate=validate.Length(0, 12))
    is_default = Bool(load_default=False)
