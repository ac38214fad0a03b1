"""Periodic sweeps, run by `rq cron workers/cron.py` (one cron scheduler per deployment)."""

from rq import cron

from workers.jobs.orders import auto_confirm_receipts, sweep_unpaid_orders

cron.register(sweep_unpaid_orders, queue_name="default", interval=60)
cron.register(auto_confirm_receipts, queue_name="low", cron="*/10 * * * *")
