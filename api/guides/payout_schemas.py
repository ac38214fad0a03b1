"""Request and response schemas of the guide payout endpoints (ADR 0023)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import MAX_ID, Id
from mall.guides.payout_models import GATEWAYS, PAYOUT_STATES

_MONEY = validate.Range(1, 10**12)


class NewPayoutSchema(Schema):
    amount = fields.Integer(strict=True, required=True, validate=_MONEY, metadata={"description": "minor units"})
    currency = fields.String(load_default="CNY", validate=validate.Regexp(r"^[A-Z]{3}$"))


class PayoutSchema(Schema):
    id = fields.Integer()
    guide_id = fields.Integer()
    brand_id = fields.Integer()
    amount = fields.Integer()
    currency = fields.String()
    state = fields.String(metadata={"description": " | ".join(PAYOUT_STATES)})
    gateway = fields.String()
    reference = fields.String(allow_none=True, metadata={"description": "the transfer id or the bank's reference"})
    rejected = fields.Boolean()
    note = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    requested_at = fields.AwareDateTime()
    approved_at = fields.AwareDateTime(allow_none=True)
    processing_at = fields.AwareDateTime(allow_none=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    failed_at = fields.AwareDateTime(allow_none=True)
    cancelled_at = fields.AwareDateTime(allow_none=True)


class PageArgs(Schema):
    before_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                               metadata={"description": "the page after: the last id seen"})  # fmt: skip
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AdminPayoutArgs(PageArgs):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "a platform admin names the brand"})  # fmt: skip
    state = fields.String(load_default=None, validate=validate.OneOf(PAYOUT_STATES))
    guide_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    gateway = fields.String(load_default=None, validate=validate.OneOf(GATEWAYS))


class BrandArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "a platform admin names the brand"})  # fmt: skip


class ProcessSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    payout_ids = fields.List(Id(), load_default=None, validate=validate.Length(1, 500),
                             metadata={"description": "only these (default: every approved payout of the brand)"})  # fmt: skip


class ProcessedSchema(Schema):
    outcomes = fields.Dict(keys=fields.String(), values=fields.String(),
                           metadata={"description": "payout id -> paid | failed | retry_later | handed_to_bank"})  # fmt: skip


class NoteSchema(Schema):
    note = fields.String(load_default=None, validate=validate.Length(1, 300))


class FailedSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(1, 300))


class PaidSchema(Schema):
    reference = fields.String(required=True, validate=validate.Length(1, 128),
                              metadata={"description": "the bank transfer's reference"})  # fmt: skip


class TermsSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    gateway = fields.String(load_default=None, validate=validate.OneOf(GATEWAYS))
    minimum_amount = fields.Integer(strict=True, load_default=None, validate=_MONEY)
    weekdays = fields.String(load_default=None, validate=validate.Regexp(r"^[1-7]{1,7}$"),
                             metadata={"description": "ISO weekdays requests are taken on: '12345' = Mon-Fri"})  # fmt: skip
    min_days_between = fields.Integer(strict=True, load_default=None, validate=validate.Range(0, 366))


class TermsOutSchema(Schema):
    brand_id = fields.Integer()
    gateway = fields.String()
    minimum_amount = fields.Integer()
    weekdays = fields.String()
    min_days_between = fields.Integer()


class AccountSchema(Schema):
    stripe_account_id = fields.String(load_default=None, validate=validate.Regexp(r"^(acct_[A-Za-z0-9]{1,60})?$"),
                                      metadata={"description": "the guide's Stripe Connect account ('' clears)"})  # fmt: skip
    bank_account = fields.String(load_default=None, validate=validate.Length(0, 128),
                                 metadata={"description": "the bank account of the transfer CSV ('' clears)"})  # fmt: skip


class AccountOutSchema(Schema):
    id = fields.Integer()
    stripe_account_id = fields.String(allow_none=True)
    bank_account = fields.String(allow_none=True)


class ReportSchema(Schema):
    id = fields.Integer()
    ran_at = fields.AwareDateTime()
    checked = fields.Integer()
    differences = fields.List(fields.Dict())
