"""Periodic sweeps, run by `rq cron workers/cron.py` (one cron scheduler per deployment).

Every sweep goes on the `low` queue: a sweep is the safety net behind a job that was queued directly (on
`high` or `default`) and could not run, so it must never hold one up. Workers take `high`, then `default`,
then `low` (`rq worker ... high default low`): a sweep waits while anything else is queued, and a job queued
while a sweep runs waits at most for that one sweep, not for the sweeps queued behind it.
"""

from rq import cron

from mall.config import Settings
from workers import runtime
from workers.jobs.coupons import birthday_coupons, expire_coupons
from workers.jobs.flash_sales import reconcile_flash_sales
from workers.jobs.group_buy import sweep_due_groups
from workers.jobs.levels import evaluate_levels, level_birthday_coupons
from workers.jobs.lucky_bags import release_unclaimed_prizes
from workers.jobs.members import members_nightly
from workers.jobs.notifications import (
    enter_inactivity_journeys,
    nudge_abandoned_carts,
    sweep_due_messages,
    sweep_unpaid_reminders,
)
from workers.jobs.orders import auto_confirm_receipts, settle_sub_orders, sweep_unpaid_orders
from workers.jobs.payments import sweep_gateway_calls, sweep_unprocessed_webhooks
from workers.jobs.payouts import reconcile_payouts, sweep_payout_transfers
from workers.jobs.points import expire_points, remind_expiring_points
from workers.jobs.retention import prune_old_rows

runtime.configure(Settings.from_env())  # the composition root, as in every entry point

cron.register(sweep_unpaid_orders, queue_name="low", interval=60)
cron.register(auto_confirm_receipts, queue_name="low", cron="*/10 * * * *")
cron.register(settle_sub_orders, queue_name="low", cron="5-59/10 * * * *")
cron.register(sweep_unprocessed_webhooks, queue_name="low", interval=120)
cron.register(sweep_gateway_calls, queue_name="low", interval=60)
cron.register(sweep_due_messages, queue_name="low", interval=60)
cron.register(sweep_unpaid_reminders, queue_name="low", interval=30)
cron.register(nudge_abandoned_carts, queue_name="low", interval=300)
cron.register(enter_inactivity_journeys, queue_name="low", cron="15 2 * * *")
cron.register(expire_coupons, queue_name="low", cron="5 * * * *")
cron.register(birthday_coupons, queue_name="low", cron="30 1 * * *")
cron.register(reconcile_flash_sales, queue_name="low", interval=300)
cron.register(sweep_due_groups, queue_name="low", interval=60)
cron.register(release_unclaimed_prizes, queue_name="low", interval=300)
cron.register(sweep_payout_transfers, queue_name="low", interval=60)
cron.register(reconcile_payouts, queue_name="low", cron="40 3 * * *")
cron.register(expire_points, queue_name="low", cron="20 * * * *")
cron.register(remind_expiring_points, queue_name="low", cron="0 3 * * *")
cron.register(members_nightly, queue_name="low", cron="45 3 * * *", job_timeout=3600)  # RFM, lifecycle, tags (ADR 0028)
cron.register(evaluate_levels, queue_name="low", cron="10 4 * * *", job_timeout=3600)  # levels (ADR 0030)
cron.register(level_birthday_coupons, queue_name="low", cron="40 1 * * *")  # a level's birthday coupon
cron.register(prune_old_rows, queue_name="low", cron="30 4 * * *", job_timeout=3600)  # retention (ADR 0035)
