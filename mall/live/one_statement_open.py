"""A cart-link open in one PostgreSQL statement, for the WSGI fast path (api/live/link_fast_path.py, ADR 0026).

`mall.live.links.open_link` is the rule: it reads the link with what the open needs, checks it in Python (and
says precisely what is wrong), then writes the cart line, touches the cart and records the room's cart add: four
statements in a transaction, six round trips with BEGIN and COMMIT. When a host pins a product thousands of
viewers tap its link at once, and those round trips were most of an open's cost. Here the same open is one
statement on an autocommit connection: the link's checks are conditions of its first CTE and the writes happen
only for a link that passes them all, so nothing is written unless the plain path would have written the same.
It does only the opens that succeed: `None` means "not done here" (a refusal, a shopper without a cart yet, a
full cart), and the caller hands the request to the plain path, which decides and explains.

tests/api/test_live_link_fast_path.py opens the same links both ways and compares answers and rows; a rule
changed in open_link must change here too (that test fails otherwise)."""

from __future__ import annotations

from datetime import UTC

from mall import clock
from mall.attribution import Source, SourceType
from mall.cart.services import MAX_LINES, MAX_QUANTITY
from mall.errors import Invalid
from mall.live import links

# :link/:token_room/:shared_by come from the verified token; :room and :sku from the request (NULL when absent).
_OPEN = f"""
WITH link AS (
    SELECT k.id AS link_id, k.room_id, k.product_id, k.sku_id AS link_sku_id, k.expires_at,
           r.host_user_id AS host_id, c.id AS cart_id, c.line_count,
           (SELECT g.id FROM live_pin_segments g WHERE g.room_id = k.room_id AND g.ended_at IS NULL) AS segment_id,
           COALESCE(k.sku_id, CAST(%(sku)s AS integer),
                    (SELECT CASE WHEN count(*) = 1 THEN min(s.id) END FROM skus s
                     WHERE s.product_id = k.product_id AND s.status = 'active')) AS sku_id
    FROM live_links k
    JOIN live_rooms r ON r.id = k.room_id
    JOIN products p ON p.id = k.product_id AND p.status = 'active'
    JOIN carts c ON c.user_id = %(user)s
    WHERE k.id = %(link)s AND k.room_id = %(token_room)s AND r.status <> 'cancelled' AND k.expires_at > %(now)s
      AND (CAST(%(room)s AS integer) IS NULL OR k.room_id = CAST(%(room)s AS integer))
      AND (k.sku_id IS NULL OR CAST(%(sku)s AS integer) IS NULL OR k.sku_id = CAST(%(sku)s AS integer))
),
ok AS (
    SELECT link.* FROM link
    JOIN skus s ON s.id = link.sku_id AND s.product_id = link.product_id AND s.status = 'active'
    WHERE link.line_count < {MAX_LINES}
       OR EXISTS (SELECT 1 FROM cart_lines x WHERE x.cart_id = link.cart_id AND x.sku_id = link.sku_id)
),
line AS (
    INSERT INTO cart_lines (cart_id, sku_id, quantity, source, created_at, updated_at)
    SELECT cart_id, sku_id, %(quantity)s,
           jsonb_build_object('type', 'live', 'room_id', room_id, 'host_id', host_id, 'segment_id', segment_id,
                              'link_id', link_id, 'shared_by', CAST(%(shared_by)s AS integer),
                              'opened_at', CAST(%(opened_at)s AS text)),
           %(now)s, %(now)s
    FROM ok
    ON CONFLICT (cart_id, sku_id) DO UPDATE
       SET quantity = LEAST(cart_lines.quantity + excluded.quantity, {MAX_QUANTITY}),
           source = excluded.source, updated_at = excluded.updated_at
    RETURNING id, cart_id, (xmax = 0) AS inserted  -- xmax = 0: this statement inserted the row (not merged)
),
touched AS (
    UPDATE carts SET version = carts.version + 1, last_activity_at = %(now)s, updated_at = %(now)s,
                     line_count = carts.line_count + CASE WHEN line.inserted THEN 1 ELSE 0 END
    FROM line WHERE carts.id = line.cart_id
    RETURNING carts.id
),
added AS (
    INSERT INTO live_cart_adds (room_id, segment_id, link_id, user_id, sku_id, quantity, created_at)
    SELECT room_id, segment_id, link_id, %(user)s, sku_id, %(quantity)s, %(now)s FROM ok
)
SELECT line.id, ok.link_id, ok.room_id, ok.product_id, ok.link_sku_id, ok.expires_at, ok.sku_id, ok.host_id,
       ok.segment_id
FROM ok JOIN line ON true JOIN touched ON true
"""


def open_link(connection, *, user_id: int, link_token: str, secret: str, room_id: int | None = None,
              sku_id: int | None = None, quantity: int = 1) -> links.Opened | None:  # fmt: skip
    """The open `links.open_link` would make, in one statement on `connection` (psycopg's own, in autocommit:
    SQLAlchemy's execution and result handling cost as much Python as the rest of the open); None (nothing
    written) for anything it would refuse, and for a shopper who has no cart yet or a full one."""
    try:
        link_id, token_room, shared_by = links.token_claims(link_token, secret=secret)
    except Invalid:
        return None
    shared_by = shared_by if shared_by != user_id else None
    now = clock.now()
    row = connection.execute(_OPEN, {
        "user": user_id, "link": link_id, "token_room": token_room, "room": room_id, "sku": sku_id, "now": now,
        "quantity": quantity, "shared_by": shared_by, "opened_at": now.isoformat(),
    }, prepare=True).fetchone()  # fmt: skip
    if row is None:
        return None
    line_id, link_id, room, product_id, link_sku, expires_at, chosen, host_id, segment_id = row
    link = links.LinkRef(link_id, room, product_id, link_sku, expires_at.astimezone(UTC))
    source = Source(SourceType.LIVE, {"room_id": link.room_id, "host_id": host_id, "segment_id": segment_id,
                                      "link_id": link.id, "shared_by": shared_by, "opened_at": now.isoformat()})  # fmt: skip
    return links.Opened(link, line_id, chosen, source)
