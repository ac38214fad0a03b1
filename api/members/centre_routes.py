"""The shopper's member centre: one call for the page a member opens (their points and what expires when; levels
and the points catalogue join as sections of their own). Tags, RFM groups and the first touch stay operators'."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.members.centre_schemas import MemberCentreSchema
from api.tx import read_only
from mall.identity.roles import Role
from mall.members import queries

blp = MallBlueprint("member_centre", __name__, description="The shopper's member centre")


@blp.get("/me/member")
@blp.auth(Role.SHOPPER)
@blp.response(200, MemberCentreSchema)
def my_member_centre():
    """The member and their points: available, pending, reserved, their value, what expires next and the coming
    expiries, and where the history is."""
    read_only()
    return queries.member_centre(db.session, user_id=current_actor().user_id)
