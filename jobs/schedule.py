"""The periodic schedule, run by the `cron` process (`python -m jobs.cron`, RQ's cron scheduler)."""
from rq import cron

from jobs.admin import refresh_platform_metrics
from jobs.analytics import catch_up as analytics_catch_up
from jobs.bookings import sweep_bookings
from jobs.imports import reconcile_imports
from jobs.mail import requeue_stranded_mail
from jobs.maintenance import purge_expired_idempotency_keys
from jobs.payments import reconcile_payments
from jobs.requests import close_ended_sets
from jobs.safety import scan_for_fraud

cron.register(purge_expired_idempotency_keys, "default", cron="17 * * * *", name="purge-idempotency-keys")
cron.register(reconcile_payments, "payments", cron="*/5 * * * *", name="reconcile-payments")
cron.register(close_ended_sets, "default", cron="* * * * *", name="close-ended-sets")
cron.register(reconcile_imports, "default", cron="* * * * *", name="reconcile-imports")
cron.register(scan_for_fraud, "default", cron="*/2 * * * *", name="scan-for-fraud")
cron.register(refresh_platform_metrics, "default", cron="* * * * *", name="refresh-platform-metrics")
cron.register(analytics_catch_up, "default", cron="*/5 * * * *", name="analytics-catch-up")
cron.register(sweep_bookings, "default", cron="* * * * *", name="sweep-bookings")
cron.register(requeue_stranded_mail, "default", cron="* * * * *", name="requeue-stranded-mail")
