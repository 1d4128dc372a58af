"""Histories of requests, tips, refunds and vetoes for the analytics tests, made through the real
state machines (so the analytics jobs are enqueued as in production), and a naive computation of
the figures straight from the raw rows."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.extensions import db
from app.models import DJSet, Payment, SongRequest, Tip, Track
from app.services.common import tasks
from app.services.payments.ledger import record_transition
from app.services.requests.states import move_request
from tests import factories


@dataclass(frozen=True)
class Item:
    """One thing that happened: a request or a tip, paid `at`, what became of it."""

    kind: str  # "request" | "tip"
    at: datetime
    cents: int
    outcome: str = "pending"  # request: pending | accepted | played | vetoed | expired
    wait_s: int = 0  # played: seconds from payment to the song starting
    refunded: bool = False
    track: int = 0  # index into the tracks
    fan: int = 0  # index into the fans


def add_item(dj_set: DJSet, tracks: list[Track], fans: list, item: Item) -> None:
    fan = fans[item.fan % len(fans)]
    if item.kind == "tip":
        payment = Payment(purpose="tip", amount_cents=item.cents, provider="sandbox", device_id=fan.id,
                          set_id=dj_set.id)
        record_transition(payment, "PENDING", "test tip")
        record_transition(payment, "COMPLETED", "test tip paid")
        db.session.add(Tip(payment_id=payment.id, set_id=dj_set.id, dj_id=dj_set.event.dj_id, device_id=fan.id,
                           amount_cents=item.cents, created_at=item.at))
        db.session.flush()
        if item.refunded:
            record_transition(payment, "REFUND_PENDING", "test refund")
            record_transition(payment, "REFUNDED", "test refunded")
        return
    track = tracks[item.track % len(tracks)]
    payment = Payment(purpose="request", amount_cents=item.cents, provider="sandbox", device_id=fan.id,
                      set_id=dj_set.id, track_id=track.id)
    record_transition(payment, "PENDING", "test checkout")
    record_transition(payment, "COMPLETED", "test payment")
    request = SongRequest(set_id=dj_set.id, track_id=track.id, device_id=fan.id, payment_id=payment.id,
                          amount_cents=item.cents, created_at=item.at)
    move_request(request, "pending", now=item.at)
    db.session.add(request)
    db.session.flush()
    if item.outcome in ("accepted", "played"):
        move_request(request, "accepted", now=item.at)
    if item.outcome == "played":
        move_request(request, "playing", now=item.at + timedelta(seconds=item.wait_s))
        move_request(request, "played", now=item.at + timedelta(seconds=item.wait_s + 180))
    if item.outcome in ("vetoed", "expired"):
        move_request(request, item.outcome, now=item.at + timedelta(minutes=1))
    if item.refunded or item.outcome in ("vetoed", "expired"):
        record_transition(payment, "REFUND_PENDING", "test refund")
        record_transition(payment, "REFUNDED", "test refunded")
    db.session.flush()


def run_analytics_jobs() -> int:
    """Run the analytics jobs waiting in the queues, here, in the order a worker would
    (the queues by urgency: refreshes on `default`, reports on `imports`)."""
    ran = 0
    for queue in map(tasks.queue, tasks.QUEUES):
        for job in queue.get_jobs():
            if job.func_name.startswith("jobs.analytics."):
                job.func(*job.args, **job.kwargs)
                queue.remove(job)
                ran += 1
    return ran


def naive(items: list[Item], zone: ZoneInfo, start: date, end: date) -> dict:
    """The page's headline figures straight from the history, in cents."""
    def local(moment: datetime) -> datetime:
        return moment.astimezone(zone)

    inside = [i for i in items if start <= local(i.at).date() <= end]
    requests = [i for i in inside if i.kind == "request"]
    tips = [i for i in inside if i.kind == "tip"]
    refunded = [i for i in requests if i.refunded or i.outcome in ("vetoed", "expired")]
    accepted = sum(1 for i in requests if i.outcome in ("accepted", "played"))
    vetoed = sum(1 for i in requests if i.outcome == "vetoed")
    waits = sorted(i.wait_s for i in requests if i.outcome == "played")
    minutes = [min(720, math.ceil(w / 60)) for w in waits]
    by_hour = {h: 0 for h in range(24)}
    heat = [[0] * 24 for _ in range(7)]
    for i in requests:
        by_hour[local(i.at).hour] += 1
        heat[local(i.at).weekday()][local(i.at).hour] += 1
    kept_tips = [i for i in tips if not i.refunded]
    per_fan: dict[int, int] = {}
    for i in kept_tips:
        per_fan[i.fan] = per_fan.get(i.fan, 0) + 1
    req_gross = sum(i.cents for i in requests)
    req_refund = sum(i.cents for i in refunded)
    tip_gross = sum(i.cents for i in tips)
    tip_refund = sum(i.cents for i in tips if i.refunded)
    return {
        "earnings": {
            "requests": {"count": len(requests), "gross": req_gross, "refunds": req_refund,
                         "net": req_gross - req_refund},
            "tips": {"count": len(tips), "gross": tip_gross, "refunds": tip_refund, "net": tip_gross - tip_refund},
            "total": {"count": len(requests) + len(tips), "gross": req_gross + tip_gross,
                      "refunds": req_refund + tip_refund, "net": req_gross - req_refund + tip_gross - tip_refund},
        },
        "requests": len(requests), "accepted": accepted, "vetoed": vetoed, "refunded": len(refunded),
        "acceptance_rate": round(100.0 * accepted / (accepted + vetoed), 1) if accepted + vetoed else None,
        "refund_rate": round(100.0 * len(refunded) / len(requests), 1) if requests else None,
        "wait": {"count": len(waits), "seconds": sum(waits),
                 "average_minutes": round(sum(waits) / len(waits) / 60, 1) if waits else None,
                 "p90_minutes": minutes[math.ceil(0.9 * len(minutes)) - 1] if minutes else None},
        "by_hour": by_hour,
        "heatmap": heat,
        "tippers": {"count": len(per_fan), "repeat": sum(1 for n in per_fan.values() if n > 1)},
    }


def history_world(zone: str = "America/Sao_Paulo", tracks: int = 6, fans: int = 4):
    """A DJ in `zone` with an event and a set, tracks and fan devices (not committed)."""
    dj = factories.create_dj("DJ Numbers")
    dj.timezone = zone
    event = factories.create_event(dj, "Month End Party", status="ended",
                                   starts_at=datetime(2026, 1, 30, 20, tzinfo=ZoneInfo("UTC")),
                                   ends_at=datetime(2026, 2, 2, 6, tzinfo=ZoneInfo("UTC")))
    dj_set = factories.create_set(event, status="ended")
    library = factories.create_tracks(dj, tracks)
    devices = [factories.device() for _ in range(fans)]
    return dj, event, dj_set, library, devices
