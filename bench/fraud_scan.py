"""The periodic fraud scan (services/admin/fraud.py, every two minutes) on
thousands of payments: 5,000 payments over 30 days from 500 devices and 200
addresses, 1,000 of them in the last 10 minutes (the shape
tests/integration/test_admin_safety.py checks the scan's findings on).
Reports the scan's time when it raises alerts, and again when nothing is new
(target: well under the two minutes between scans; it was ~250 ms). In-process,
a throw-away SQLite file (or BENCH_DATABASE_URL).

    python bench/fraud_scan.py [--payments 5000] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

from _support import bench_app, live_event, summary, tracks


def fill(n: int) -> None:
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import GuestDevice, Payment, utcnow

    event, dj_set = live_event()
    track = tracks(event.dj_id, 1)[0]
    devices = [GuestDevice(public_id=f"bulk-{i}") for i in range(500)]
    db.session.add_all(devices)
    db.session.flush()
    now = utcnow()
    rows = []
    for i in range(n):
        recent = i % 5 == 0
        at = now - (timedelta(seconds=(i * 7) % 590) if recent else timedelta(minutes=15 + (i * 37) % (30 * 24 * 60)))
        state = ("COMPLETED", "FAILED", "EXPIRED", "REFUNDED", "PENDING")[(i // 5) % 5]
        rows.append(dict(purpose="request", amount_cents=2000, provider="sandbox", device_id=devices[i % 500].id,
                         set_id=dj_set.id, track_id=track.id, state=state, created_at=at, updated_at=at,
                         client_key=f"addr-{i % 200}", client_ip=f"10.1.{i % 200}.1",
                         completed_at=at if state not in ("FAILED", "PENDING", "EXPIRED") else None))
    db.session.execute(insert(Payment), rows)
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with bench_app() as app:
        from app.extensions import db
        from app.models import FraudAlert
        from app.services.admin.fraud import scan_for_fraud

        with app.app_context():
            fill(args.payments)
            raising, quiet, raised = [], [], {}
            for _ in range(args.runs):
                db.session.query(FraudAlert).delete()
                db.session.commit()
                started = time.perf_counter()
                raised = scan_for_fraud()
                raising.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                scan_for_fraud()
                quiet.append((time.perf_counter() - started) * 1000)
    print(f"fraud scan over {args.payments} payments, raising {sum(raised.values())} alerts: {summary(raising)}")
    print(f"again, nothing new: {summary(quiet)}")
    print(json.dumps({"bench": "fraud_scan", "payments": args.payments, "raised": raised,
                      "raising_ms": summary(raising), "nothing_new_ms": summary(quiet)}))


if __name__ == "__main__":
    main()
