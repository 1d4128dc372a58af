"""The admin overview's platform metrics (issue 13, item 7): the figures of
a period from one service (`services/admin/metrics.platform_metrics`), each
with an inline-SVG chart and its figures as a table."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Dispute, Payment, WebhookEvent, utcnow
from app.services.admin.metrics import platform_metrics
from app.services.common import tasks
from app.services.common.text import rands
from app.services.payments import record_transition

pytestmark = pytest.mark.night(tracks=4)


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def payment(night, states: tuple[str, ...], cents: int, *, purpose: str = "request", days_ago: float = 0) -> Payment:
    p = Payment(purpose=purpose, amount_cents=cents, provider="sandbox", device_id=night.fan.id,
                set_id=night.set.id, track_id=night.tracks[0].id if purpose == "request" else None)
    for state in states:
        record_transition(p, state, "test")
    db.session.commit()
    if days_ago:
        db.session.execute(update(Payment).where(Payment.id == p.id)
                           .values(created_at=utcnow() - timedelta(days=days_ago)))
        db.session.commit()
    return p


@pytest.fixture
def ledger(night):
    """Besides the night's four paid requests (created now): a paid tip, a
    refunded request, a declined and an expired checkout, one still pending,
    a dispute; one paid request three days ago and one forty days ago."""
    base = sum(db.session.get(Payment, r.payment_id).amount_cents for r in night.requests.values())
    payment(night, ("PENDING", "COMPLETED"), 5000, purpose="tip")
    refunded = payment(night, ("PENDING", "COMPLETED", "REFUND_PENDING", "REFUNDED"), 3000)
    payment(night, ("PENDING", "FAILED"), 2000)
    payment(night, ("PENDING", "EXPIRED"), 2000)
    payment(night, ("PENDING",), 2000)
    payment(night, ("PENDING", "COMPLETED"), 7000, days_ago=3)
    payment(night, ("PENDING", "COMPLETED"), 9000, days_ago=40)
    db.session.add(Dispute(payment_id=refunded.id, device_id=night.fan.id, reason="I was charged twice"))
    db.session.commit()
    return base


def test_the_figures_of_today(app, night, ledger):
    m = platform_metrics("today")
    assert m.gmv_cents == ledger + 5000 + 3000  # paid, refunds not taken off
    assert m.revenue_cents == round((ledger + 5000) * 0.10)  # 10% of the requests and tips kept
    assert m.payments_started == 4 + 5
    assert m.success_rate == pytest.approx(6 / 8)  # paid / (paid + declined + expired); pending not counted
    assert m.refund_rate == pytest.approx(1 / 6)
    assert m.dispute_rate == pytest.approx(1 / 6)
    assert (m.active_events, m.active_sets) == (1, 1)
    assert m.accounts["fan"] >= 1 and m.accounts["dj"] == 1 and m.accounts["venue"] == 1
    assert len(m.buckets) == m.until.astimezone(m.buckets[0].start.tzinfo).hour + 1


def test_periods_and_the_fee_are_configurable(app, night, ledger, monkeypatch):
    week, month = platform_metrics("7d"), platform_metrics("30d")
    assert week.gmv_cents == ledger + 8000 + 7000 and len(week.buckets) == 7
    assert month.gmv_cents == week.gmv_cents and len(month.buckets) == 30  # forty days ago is out
    assert sum(1 for b in week.buckets if b.paid) == 2  # today and three days ago
    monkeypatch.setitem(app.config, "PLATFORM_FEE_PERCENT", 12.5)
    assert platform_metrics("7d").revenue_cents == round((ledger + 5000 + 7000) * 0.125)


def test_webhook_lag_queue_depth_and_failed_jobs(app, night):
    now = utcnow()
    for i, lag in enumerate((1, 2, 3, 4, 100)):
        db.session.add(WebhookEvent(provider="sandbox", webhook_id=f"msg_lag_{i}", event_type="payment.succeeded",
                                    payload="{}", status="processed", received_at=now - timedelta(minutes=10),
                                    processed_at=now - timedelta(minutes=10) + timedelta(seconds=lag)))
    db.session.add(WebhookEvent(provider="sandbox", webhook_id="msg_old", event_type="payment.succeeded",
                                payload="{}", status="processed", received_at=now - timedelta(hours=2),
                                processed_at=now - timedelta(hours=1)))
    db.session.commit()
    tasks.queue().empty()  # what the night's own commits queued (e.g. analytics) is not this test's
    tasks.enqueue_now("jobs.payments.reconcile_payments")  # no worker here: it waits
    m = platform_metrics("today")
    assert m.webhooks_timed == 5 and m.webhook_lag_p50 == 3 and m.webhook_lag_p95 == 100
    assert m.queue_depth == 1 and m.failed_jobs == 0


def test_the_overview_draws_a_chart_and_a_table_for_each_figure(admin_client, night, ledger):
    html = admin_client.get("/admin/?period=7d").get_data(as_text=True)
    assert html.count('<svg class="chart') == 6 and html.count('role="img"') >= 6
    assert "Figures by day" in html and html.count('<th scope="row">') == 7  # the charts as one table, a row a day
    assert 'aria-current="page">7 days' in html
    assert "style=" not in html.split("<main", 1)[1]  # strict CSP: no inline styles
    assert "<script>" not in html
    assert f'<p class="metric-value">{rands(ledger + 15000)}</p>' in html
    today = admin_client.get("/admin/?period=nonsense").get_data(as_text=True)
    assert 'aria-current="page">Today' in today and "Figures by hour" in today


def test_the_period_figures_are_kept_a_minute_and_refreshed_by_the_job(app, night, ledger):
    from jobs.admin import refresh_platform_metrics

    first = platform_metrics("today")
    payment(night, ("PENDING", "COMPLETED"), 4000, purpose="tip")
    kept = platform_metrics("today")
    assert kept.gmv_cents == first.gmv_cents and kept.computed_at == first.computed_at
    assert platform_metrics("today", max_age=0).gmv_cents == first.gmv_cents + 4000  # what /metrics may ask for
    payment(night, ("PENDING", "COMPLETED"), 1000, purpose="tip")
    assert refresh_platform_metrics() == {"today": len(first.buckets), "7d": 7, "30d": 30}
    assert platform_metrics("today").gmv_cents == first.gmv_cents + 5000
    assert platform_metrics("30d").gmv_cents == platform_metrics("30d", max_age=0).gmv_cents
