"""`flask mall ...` operator commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from api.extensions import db
from api.tx import commit


@click.group("mall", cls=AppGroup)  # its commands run inside the app context, under `flask` and in tests alike
def mall_cli():
    """Mall operations: demo data, first admin."""


@mall_cli.command("demo")
def load_demo():
    """Load the demo catalog and users (safe to run again: it adds nothing twice)."""
    from api.settings import settings
    from mall import demo
    from mall.config import ConfigError

    try:
        created = demo.load(db.session, env=settings().env)
    except ConfigError as refused:
        raise click.ClickException(str(refused)) from None  # one line on stderr, exit status 1
    commit()
    click.echo(f"demo data: {'loaded' if created else 'already present'}")
    for line in [*demo.TOKEN_HELP, *demo.live_link_help(db.session, secret=settings().secret_key)]:
        click.echo(line)


@mall_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="Platform admin")
@click.password_option()
def create_admin(email, name, password):
    """Create a platform admin who logs in with POST /api/v1/auth/password."""
    from mall.identity.services import bootstrap_platform_admin

    user = bootstrap_platform_admin(db.session, email=email, name=name, password=password)
    commit()
    click.echo(f"platform admin {user.email} (id {user.id}) ready")


@mall_cli.command("wiring")
def show_wiring():
    """List what the composition root installed: reactions, subscribers, pricing steps, guards, hooks."""
    from workers import composition

    for kind, entries in composition.describe().items():
        click.echo(f"{kind}:")
        for name, handlers in entries.items() if isinstance(entries, dict) else ((None, entries),):
            for handler in handlers:
                click.echo(f"  {name + ': ' if name else ''}{handler}")


@mall_cli.command("commission-audit")
def commission_audit():
    """Check every guide's cached commission balance against the sum of their ledger entries (exit 1 if any differ)."""
    from mall.guides import ledger

    wrong = ledger.audit(db.session)
    db.session.rollback()
    for guide_id, currency in wrong:
        click.echo(f"guide {guide_id} {currency}: guide_balances differs from the sum of its entries")
    if wrong:
        raise click.exceptions.Exit(1)
    click.echo("commission balances: every cache equals the sum of its entries")


@mall_cli.command("points-audit")
def points_audit():
    """Check every points lot against its entries and every member's cached balance against their entries, lots and
    (reserved) the holds of their unpaid orders (exit 1 if any differ)."""
    from mall.members import ledger

    wrong = ledger.audit(db.session)
    db.session.rollback()
    for what, row_id in wrong:
        click.echo(f"{what} {row_id}: the cached points differ from the ledger")
    if wrong:
        raise click.exceptions.Exit(1)
    click.echo("points: every lot and balance equals the sum of its entries; reserved equals the held holds")


@mall_cli.command("audit")
@click.option("--no-redis", is_flag=True, help="skip comparing the flash counters in Redis with the database")
def audit(no_redis):
    """Check the invariants (mall/invariants.py): order totals, payments and refunds, paid orders settled, flash quota,
    coupon counts, messages sent once, the commission and points ledgers, the Redis flash counters (exit 1 if any
    fails). Run it when nothing is in flight: a purchase between two reads looks like a difference."""
    from mall import invariants
    from workers.flash import gate

    checks = invariants.run(db.session, gate=None if no_redis else gate())
    db.session.rollback()
    for check in checks:
        verdict = "ok" if check.ok else f"VIOLATED by {check.violations[:20]}"
        click.echo(f"{check.name:<22} {verdict}  ({check.figure})" if check.figure else f"{check.name:<22} {verdict}")
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(1)


@mall_cli.command("flush-token-cache")
@click.option(
    "--user", "user_ids", type=int, multiple=True, help="only this user (repeatable); default every cached one"
)
@click.option("--wechat", is_flag=True, help="also drop the cached WeChat access tokens (after rotating an app secret)")
def flush_token_cache(user_ids, wechat):
    """Make every API process re-read users from the database: after a change that bypassed the ORM (psql, a
    restored backup) to token_version, role, brand or status. Cached entries are tombstoned, not deleted, so a
    request that read the old row a moment ago cannot put it back (mall/identity/tokens.py)."""
    from api.settings import settings
    from mall.identity.tokens import TokenCache
    from mall.notifications.wechat import RedisTokenCache
    from workers.connection import get_redis

    client = get_redis(settings())
    keys = client.scan_iter(match="auth:user:*", count=1000)
    ids = set(user_ids) or {int((k.decode() if isinstance(k, bytes) else k).rsplit(":", 1)[1]) for k in keys}
    TokenCache(client).invalidate(sorted(ids))
    click.echo(f"token cache: {len(ids)} users' entries tombstoned; their next request reads the database")
    if wechat:
        for app_id in settings().wechat_apps:
            RedisTokenCache(client).delete(app_id)
        click.echo(f"WeChat access tokens dropped for {len(settings().wechat_apps)} apps; the next send fetches one")
