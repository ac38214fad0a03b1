"""Set-up for member level tests: the level table over HTTP, members' levels, growth rows and messages."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from api.extensions import db
from mall.identity.models import User
from mall.members.level_models import MemberGrowth
from mall.notifications.models import Message

LEVELS = "/api/v1/admin/members/levels"
SILVER = {"level": 1, "name": "Silver", "threshold": 5000, "discount_bp": 500, "multiplier_bp": 20_000,
          "free_shipping_above": 5000}  # fmt: skip
GOLD = {"level": 2, "name": "Gold", "threshold": 20000, "discount_bp": 1000, "multiplier_bp": 30_000}


class Levels:
    def __init__(self, app, client, operator: dict):
        self.app, self.client, self.operator = app, client, operator

    def put(self, levels: list[dict], headers: dict | None = None):
        return self.client.put(LEVELS, json={"levels": levels}, headers=headers or self.operator)

    def replace(self, levels: list[dict]) -> dict:
        resp = self.put(levels)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def dry_run(self, levels: list[dict], headers: dict | None = None):
        return self.client.post(f"{LEVELS}/dry-run", json={"levels": levels}, headers=headers or self.operator)

    def level_of(self, user_id: int) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(User.member_level).where(User.id == user_id))

    def levels_of(self, user_ids: list[int]) -> dict[int, int]:
        with self.app.app_context():
            rows = db.session.execute(sa.select(User.id, User.member_level).where(User.id.in_(user_ids)))
            return dict(rows.all())

    def set(self, user_id: int, *, level: int | None = None, birthday: date | None = None) -> None:
        with self.app.app_context():
            user = db.session.get(User, user_id)
            if level is not None:
                user.member_level = level
            if birthday is not None:
                user.birthday = birthday
            db.session.commit()

    def growth(self, user_id: int) -> tuple[int, object] | None:
        with self.app.app_context():
            row = db.session.get(MemberGrowth, user_id)
            return None if row is None else (row.growth, row.below_since)

    def messages(self, template_key: str) -> list[tuple[int, str, dict]]:
        with self.app.app_context():
            rows = db.session.scalars(sa.select(Message).filter_by(template_key=template_key).order_by(Message.id))
            return [(m.user_id, m.dedupe_key, m.payload) for m in rows]
