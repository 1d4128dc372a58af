"""The periodic schedule, run by `rq cron jobs/schedule.py` (the `cron` process)."""
from rq import cron

from jobs.maintenance import purge_expired_idempotency_keys

cron.register(purge_expired_idempotency_keys, "default", cron="17 * * * *", name="purge-idempotency-keys")
