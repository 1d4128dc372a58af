"""The periodic fraud scan: signals computed from the ledger, filed as alerts
with their evidence (services/common/alerts.py: once per window and target).

- declines: FRAUD_DECLINES or more payments started in the last
  FRAUD_WINDOW_MINUTES that failed, from one device or one address;
- holds: FRAUD_HOLD_DEVICES or more devices behind one address starting
  checkouts that stay unpaid (PENDING or EXPIRED) in the window (the
  checkout files its own "holds" alert when one address asks for more than
  its share of one set: services/requests/checkout.py);
- refund_abuse: a device or an account whose refunded or disputed payments
  are FRAUD_REFUND_MIN or more and at least FRAUD_REFUND_RATIO of its paid
  payments over FRAUD_REFUND_DAYS (looked at when it had a refund or a
  dispute in the window);
- velocity: a device starting FRAUD_VELOCITY_MIN or more requests in the
  window and at least FRAUD_VELOCITY_FACTOR times its normal: its average
  per window in which it asked at all over the FRAUD_VELOCITY_DAYS before.

Every query reads an index by a time range or by the few targets found
(ix_payments_state_created, ix_payments_created_at, ix_payments_state_updated,
ix_payments_device_created, ix_disputes_created_at): the scan costs what the
last window holds, not the size of the tables.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app
from sqlalchemy import case, func, select

from ...extensions import db
from ...models import Dispute, GuestDevice, Payment, User, utcnow
from ..common.alerts import Draft, filed_keys, raise_alerts, window_bucket

REFUND_STATES = ("REFUND_PENDING", "REFUNDED", "REFUND_FAILED")
UNPAID_STATES = ("PENDING", "EXPIRED")
EVIDENCE_REFS = 20  # payment references kept in an alert's detail
CANDIDATES = 200  # targets looked at per signal and scan
BASELINE_ROWS = 5_000


@dataclass(frozen=True)
class Thresholds:
    window: timedelta
    declines: int
    hold_devices: int
    refund_ratio: float
    refund_min: int
    refund_days: int
    velocity_min: int
    velocity_factor: float
    velocity_days: int

    @classmethod
    def from_config(cls) -> "Thresholds":
        c = current_app.config
        return cls(timedelta(minutes=c["FRAUD_WINDOW_MINUTES"]), c["FRAUD_DECLINES"], c["FRAUD_HOLD_DEVICES"],
                   c["FRAUD_REFUND_RATIO"], c["FRAUD_REFUND_MIN"], c["FRAUD_REFUND_DAYS"], c["FRAUD_VELOCITY_MIN"],
                   c["FRAUD_VELOCITY_FACTOR"], c["FRAUD_VELOCITY_DAYS"])


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Scan:
    def __init__(self, now: datetime, limits: Thresholds) -> None:
        self.now, self.t = now, limits
        self.since = now - limits.window
        self.seconds = int(limits.window.total_seconds())
        # (kind, key, the key before, what builds the evidence, the target): the
        # evidence is read only for alerts not raised yet.
        self.found: list[tuple[str, str, tuple[str, ...], Callable[[], dict[str, Any]], dict[str, Any]]] = []

    def keys(self, prefix: str, seconds: int) -> tuple[str, tuple[str, ...]]:
        """This window's dedupe key and the one before (a burst across the boundary is one alert)."""
        bucket = window_bucket(self.now, seconds)
        return f"{prefix}:{bucket}", (f"{prefix}:{bucket - 1}",)

    def file(self, kind: str, prefix: str, detail: Callable[[], dict[str, Any]], *, seconds: int | None = None,
             **target: Any) -> None:
        key, before = self.keys(prefix, seconds or self.seconds)
        self.found.append((kind, key, before, detail, target))

    def drafts(self) -> list[Draft]:
        seen = filed_keys([k for _, key, before, _, _ in self.found for k in (key, *before)])
        return [Draft(kind, key, detail(), before, target) for kind, key, before, detail, target in self.found
                if not seen & {key, *before}]

    def window_detail(self, what: str, **figures: Any) -> dict[str, Any]:
        return {"what": what, "window_minutes": self.seconds // 60, "from": _iso(self.since), "to": _iso(self.now),
                **figures}

    def refs(self, *conditions) -> list[str]:
        return list(db.session.scalars(select(Payment.public_id).where(*conditions)
                                       .order_by(Payment.created_at.desc()).limit(EVIDENCE_REFS)))

    @staticmethod
    def devices(ids) -> dict[int, tuple[str, int | None]]:
        """Device id -> (public id, account id), in one query."""
        ids = list(ids)
        if not ids:
            return {}
        return {row.id: (row.public_id, row.user_id) for row in db.session.execute(
            select(GuestDevice.id, GuestDevice.public_id, GuestDevice.user_id).where(GuestDevice.id.in_(ids)))}

    # -- the signals ------------------------------------------------------
    # Each files (kind, key, evidence builder, target); the builder runs only
    # for an alert not raised yet, so a scan that finds nothing new is a few
    # grouped queries.

    def declines(self) -> None:
        failed = (Payment.state == "FAILED", Payment.created_at >= self.since)
        minutes = self.seconds // 60
        for column, label in ((Payment.device_id, "device"), (Payment.client_key, "address")):
            found = db.session.execute(
                select(column, func.count(), func.max(Payment.client_ip), func.max(Payment.user_id))
                .where(*failed, column.is_not(None)).group_by(column)
                .having(func.count() >= self.t.declines).limit(CANDIDATES)).all()
            devices = self.devices(target for target, *_ in found) if label == "device" else {}
            for target, count, ip, user_id in found:
                def detail(count=count, target=target, column=column, label=label) -> dict[str, Any]:
                    extra = {"address_key": target} if label == "address" else {}
                    return self.window_detail(f"{count} failed payments from one {label} in {minutes} minutes",
                                              count=count, threshold=self.t.declines, target=label, **extra,
                                              payments=self.refs(*failed, column == target))
                if label == "device":
                    public_id, account = devices[target]
                    self.file("declines", f"declines:device:{public_id}", detail, device_id=target,
                              user_id=account, ip=ip)
                else:
                    self.file("declines", f"declines:address:{target}", detail, ip=ip, user_id=user_id)

    def holds(self) -> None:
        unpaid = (Payment.state.in_(UNPAID_STATES), Payment.purpose == "request", Payment.created_at >= self.since)
        found = db.session.execute(
            select(Payment.client_key, func.count(func.distinct(Payment.device_id)), func.count(),
                   func.max(Payment.client_ip))
            .where(*unpaid, Payment.client_key.is_not(None)).group_by(Payment.client_key)
            .having(func.count(func.distinct(Payment.device_id)) >= self.t.hold_devices).limit(CANDIDATES)).all()
        for key, devices, checkouts, ip in found:
            def detail(key=key, devices=devices, checkouts=checkouts) -> dict[str, Any]:
                device_ids = db.session.scalars(select(func.distinct(GuestDevice.public_id))
                                                .join(Payment, Payment.device_id == GuestDevice.id)
                                                .where(*unpaid, Payment.client_key == key).limit(EVIDENCE_REFS))
                return self.window_detail(
                    f"{devices} devices behind one address started {checkouts} checkouts left unpaid",
                    devices=devices, checkouts=checkouts, threshold=self.t.hold_devices, address_key=key,
                    device_ids=sorted(device_ids), payments=self.refs(*unpaid, Payment.client_key == key))
            self.file("holds", f"holds:address:{key}", detail, ip=ip)

    def refund_abuse(self) -> None:
        days = timedelta(days=self.t.refund_days)
        seconds = self.t.refund_days * 86_400
        for column, label in ((Payment.device_id, "device"), (Payment.user_id, "account")):
            dispute_column = Dispute.device_id if label == "device" else Dispute.user_id
            recent = set(db.session.scalars(
                select(column).where(Payment.state.in_(REFUND_STATES), Payment.updated_at >= self.since,
                                     column.is_not(None)).limit(CANDIDATES)))
            recent |= set(db.session.scalars(
                select(dispute_column).where(Dispute.created_at >= self.since, dispute_column.is_not(None))
                .limit(CANDIDATES)))
            if not recent:
                continue
            disputed = select(Dispute.payment_id).where(Dispute.payment_id == Payment.id).exists()
            bad = Payment.state.in_(REFUND_STATES) | disputed
            paid = (column.in_(recent), Payment.completed_at.is_not(None), Payment.created_at >= self.now - days)
            found = db.session.execute(
                select(column, func.count(), func.sum(case((bad, 1), else_=0)),
                       func.sum(case((Payment.state.in_(REFUND_STATES), 1), else_=0)),
                       func.sum(case((disputed, 1), else_=0)), func.max(Payment.client_ip))
                .where(*paid).group_by(column)).all()
            flagged_rows = [row for row in found
                            if int(row[2] or 0) >= self.t.refund_min and int(row[2] or 0) >= self.t.refund_ratio * row[1]]
            if label == "device":
                names = {i: public_id for i, (public_id, _) in self.devices(r[0] for r in flagged_rows).items()}
                accounts = {i: account for i, (_, account) in self.devices(r[0] for r in flagged_rows).items()}
            else:
                names = dict(db.session.execute(select(User.id, User.public_id)
                                                .where(User.id.in_([r[0] for r in flagged_rows]))).all())
            for target, payments, flagged, refunds, disputes, ip in flagged_rows:
                def detail(target=target, payments=payments, flagged=int(flagged), refunds=int(refunds or 0),
                           disputes=int(disputes or 0), column=column, label=label) -> dict[str, Any]:
                    ratio = round(flagged / payments, 2)
                    return {"what": f"{flagged} of {payments} paid payments in {self.t.refund_days} days were "
                                    f"refunded or disputed ({ratio:.0%})",
                            "days": self.t.refund_days, "paid_payments": payments, "refunded": refunds,
                            "disputed": disputes, "ratio": ratio, "threshold_ratio": self.t.refund_ratio,
                            "threshold_count": self.t.refund_min, "target": label,
                            "payments": self.refs(*paid, column == target, bad)}
                if label == "device":
                    self.file("refund_abuse", f"refund_abuse:device:{names[target]}", detail, seconds=seconds,
                              device_id=target, user_id=accounts[target], ip=ip)
                else:
                    self.file("refund_abuse", f"refund_abuse:account:{names[target]}", detail, seconds=seconds,
                              user_id=target, ip=ip)

    def velocity(self) -> None:
        requests = (Payment.purpose == "request",)
        found = {device_id: (count, ip) for device_id, count, ip in db.session.execute(
            select(Payment.device_id, func.count(), func.max(Payment.client_ip))
            .where(*requests, Payment.created_at >= self.since, Payment.device_id.is_not(None))
            .group_by(Payment.device_id).having(func.count() >= self.t.velocity_min).limit(CANDIDATES))}
        if not found:
            return
        history_from = self.since - timedelta(days=self.t.velocity_days)
        active: dict[int, set[int]] = defaultdict(set)
        counts: dict[int, int] = defaultdict(int)
        for device_id, created in db.session.execute(
                select(Payment.device_id, Payment.created_at)
                .where(*requests, Payment.device_id.in_(list(found)), Payment.created_at >= history_from,
                       Payment.created_at < self.since).limit(BASELINE_ROWS)):
            active[device_id].add(window_bucket(created, self.seconds))
            counts[device_id] += 1
        fast = {}
        for device_id, (recent, ip) in found.items():
            normal = counts[device_id] / len(active[device_id]) if active[device_id] else 0.0
            if recent >= self.t.velocity_factor * normal:
                fast[device_id] = (recent, ip, normal)
        devices = self.devices(fast)
        for device_id, (recent, ip, normal) in fast.items():
            def detail(device_id=device_id, recent=recent, normal=normal) -> dict[str, Any]:
                window = (*requests, Payment.device_id == device_id, Payment.created_at >= self.since)
                return self.window_detail(
                    f"{recent} requests in {self.seconds // 60} minutes; this fan's normal is {normal:.1f}",
                    count=recent, normal_per_window=round(normal, 2), history_days=self.t.velocity_days,
                    history_requests=counts[device_id], threshold=self.t.velocity_min,
                    factor=self.t.velocity_factor, payments=self.refs(*window))
            public_id, account = devices[device_id]
            self.file("velocity", f"velocity:device:{public_id}", detail, device_id=device_id, user_id=account,
                      ip=ip)


def scan_for_fraud(now: datetime | None = None) -> dict[str, int]:
    """Run every signal once and raise what is new (one commit); returns the alerts raised per kind."""
    scan = _Scan(now or utcnow(), Thresholds.from_config())
    for signal in (scan.declines, scan.holds, scan.refund_abuse, scan.velocity):
        signal()
    raised: dict[str, int] = defaultdict(int)
    for alert in raise_alerts(scan.drafts()):
        raised[alert.kind] += 1
    return dict(raised)

