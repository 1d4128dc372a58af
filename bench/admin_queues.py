"""The admin's refund and dispute queues on a big ledger, as whole pages
(query + render) through the app: the open disputes (oldest first), the
answered ones, a deep page, the pending refunds, the decided ones, and a
disputed payment's timeline.

The ledger: the reconciliation bench's settled payments (default 100,000);
a dispute on every 5th payment (a third of them open) and a refund request
on every 7th (a tenth pending). Measured in-process against a throw-away
SQLite file (or BENCH_DATABASE_URL), signed in as the demo admin. Target:
p95 ≤ 50 ms for every page.

    python bench/admin_queues.py [--settled 100000] [--runs 30]
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

from _support import bench_app, summary
from reconcile import Ledger


def add_cases() -> dict[str, int]:
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import Dispute, Payment, RefundRequest, User, utcnow
    from app.models.base import new_public_id

    asker = db.session.scalar(select(User.id).where(User.role == "admin").limit(1))
    second = User(email="second-admin@example.com", password_hash="x", role="admin", display_name="Second")
    db.session.add(second)
    db.session.flush()
    approver = second.id
    ids = db.session.scalars(select(Payment.id).order_by(Payment.id)).all()
    now = utcnow()
    disputes, refunds = [], []
    for n, payment_id in enumerate(ids):
        at = now - timedelta(minutes=len(ids) - n)
        if n % 5 == 0:
            is_open = n % 15 == 0
            disputes.append({"public_id": new_public_id(), "payment_id": payment_id, "category": "charged_twice",
                             "reason": "Two charges on my card for one song.", "status": "open" if is_open else
                             "rejected", "resolution_note": None if is_open else "Only one charge reached you.",
                             "resolved_by_id": None if is_open else asker, "resolved_at": None if is_open else at,
                             "created_at": at})
        if n % 7 == 0:
            pending = n % 70 == 0
            refunds.append({"public_id": new_public_id(), "payment_id": payment_id, "amount_cents": 60_000,
                            "reason": "Charged for a song the DJ skipped", "second_admin": True,
                            "status": "pending" if pending else "approved", "asked_by_id": asker,
                            "decided_by_id": None if pending else approver, "decided_at": None if pending else at,
                            "created_at": at})
    db.session.execute(insert(Dispute), disputes)
    db.session.execute(insert(RefundRequest), refunds)
    db.session.commit()
    return {"disputes": len(disputes), "refund_requests": len(refunds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settled", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with bench_app() as app, app.app_context():
        from sqlalchemy import select, text

        from app.extensions import db
        from app.models import Dispute, Payment

        backend = db.engine.dialect.name
        start = time.perf_counter()
        ledger = Ledger()
        ledger.add_settled(args.settled)
        sizes = {**ledger.sizes(), **add_cases()}
        if backend == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        build_s = time.perf_counter() - start
        disputed = db.session.scalar(select(Payment.public_id).join(Dispute, Dispute.payment_id == Payment.id)
                                     .where(Dispute.status == "open").limit(1))
        db.session.rollback()

        client = app.test_client()
        signed_in = client.post("/login", data={"email": "admin@example.com", "password": "beatmatch-demo"})
        assert signed_in.status_code == 303
        shapes = {
            "open disputes (page 1)": "/admin/disputes",
            "open disputes (page 50)": "/admin/disputes?page=50",
            "answered disputes": "/admin/disputes?status=resolved",
            "pending refunds": "/admin/refunds",
            "approved refunds (page 20)": "/admin/refunds?status=approved&page=20",
            "a disputed payment's timeline": f"/admin/payments/{disputed}",
        }
        figures = {}
        for name, url in shapes.items():
            client.get(url)  # warm
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            figures[name] = summary(times)

    print(f"ledger: {sizes['payments']:,} payments, {sizes['disputes']:,} disputes, "
          f"{sizes['refund_requests']:,} refund requests ({backend}, built in {build_s:.1f} s)")
    print(f"{'page':<36}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, f in figures.items():
        print(f"{name:<36}{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}{f['max_ms']:>9.1f}")
    print(json.dumps({"bench": "admin_queues", "backend": backend, **sizes, "pages": figures}))


if __name__ == "__main__":
    main()
