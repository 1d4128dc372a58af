"""Analytics jobs: keep the rollups current (services/analytics/rollup.py)."""
from __future__ import annotations

from app.services import analytics
from app.services.analytics.hooks import PAYMENTS_JOB, REQUESTS_JOB
from app.services.common import tasks

from .context import with_app_context


@with_app_context
def refresh_requests(request_ids: list[int] | None = None) -> int:
    """After transactions created or moved requests: their (set, day) buckets from the raw rows
    (the ids given, or every id waiting for this coalesced job)."""
    return analytics.refresh_requests(request_ids if request_ids is not None else tasks.take_coalesced(REQUESTS_JOB))


@with_app_context
def refresh_payments(payment_ids: list[int] | None = None) -> int:
    """After transactions moved payments (a tip paid, refunds): the buckets of what they paid for
    (the ids given, or every id waiting for this coalesced job)."""
    return analytics.refresh_payments(payment_ids if payment_ids is not None else tasks.take_coalesced(PAYMENTS_JOB))


@with_app_context
def catch_up() -> int:
    """Every 5 minutes: buckets whose raw rows changed since the last run (a job that was lost)."""
    return analytics.catch_up()


@with_app_context
def build_report(dj_id: int, report_id: str) -> str:
    """A long range's PDF report: lay out the HTML the web process rendered, write the PDF."""
    return analytics.report.build(dj_id, report_id)
