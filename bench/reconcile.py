"""Reconciliation with a big ledger: one `reconcile_payments()` run, the
safety net the cron process starts every 5 minutes.

The ledger: N settled payments (default 100,000: COMPLETED, and REFUNDED
after one or two refund attempts), each with its transition history and the
processed `payment.succeeded` webhook it arrived by, inserted in bulk; then
D failed refunds whose retry is due (default 1,000: REFUND_FAILED an hour
ago, after one attempt, their scheduled retry job lost). Measured in-process
against a throw-away SQLite file (or BENCH_DATABASE_URL) and the Redis at
REDIS_URL (a private one otherwise):

1. one run with nothing due (the cost of looking, on the settled ledger);
2. one run with the D due refunds: its time and how many it retried;
3. if that run left some due (a LIMIT per run), the further runs until none is.

Works on older checkouts too (without `payments.refund_retry_at`), so the
same ledger can be measured before and after:

    python bench/reconcile.py [--settled 100000] [--due 1000]
"""
from __future__ import annotations

import argparse
import json
import secrets
import time
from datetime import timedelta

from _support import bench_app

CHUNK = 10_000


class Ledger:
    """Bulk inserts of payments with their histories and webhooks (no ORM objects, a few statements)."""

    def __init__(self) -> None:
        from sqlalchemy import insert, select

        from app.extensions import db
        from app.models import DJSet, GuestDevice, Payment, Track, utcnow

        self.now = utcnow()
        self.has_due_column = "refund_retry_at" in Payment.__table__.c
        self.sets = db.session.scalars(select(DJSet.id).order_by(DJSet.id)).all()
        self.tracks = db.session.scalars(select(Track.id).order_by(Track.id).limit(500)).all()
        db.session.execute(insert(GuestDevice), [{"public_id": f"bench-reconcile-{i}"} for i in range(1000)])
        self.devices = db.session.scalars(select(GuestDevice.id).where(
            GuestDevice.public_id.like("bench-reconcile-%"))).all()
        db.session.commit()
        self.next = 0

    def _row(self, i: int, state: str, created) -> dict:
        return {"public_id": secrets.token_urlsafe(12), "purpose": "request", "state": state, "amount_cents": 2000,
                "currency": "ZAR", "provider": "sandbox", "provider_checkout_id": f"ch_bench_{i:07d}",
                "provider_payment_id": f"p_bench_{i:07d}", "set_id": self.sets[i % len(self.sets)],
                "track_id": self.tracks[i % len(self.tracks)], "device_id": self.devices[i % len(self.devices)],
                "created_at": created, "updated_at": created, "completed_at": created + timedelta(seconds=20),
                "refunded_at": None, "refund_reason": None}

    def _insert(self, rows: list[dict], histories: list[list[tuple[str, object]]]) -> None:
        from sqlalchemy import insert, select

        from app.extensions import db
        from app.models import Payment, PaymentTransition, WebhookEvent

        if not rows:
            return
        db.session.execute(insert(Payment.__table__), rows)  # Core executemany: no ORM objects
        first, last = rows[0]["provider_checkout_id"], rows[-1]["provider_checkout_id"]
        ids = dict(db.session.execute(select(Payment.provider_checkout_id, Payment.id).where(
            Payment.provider_checkout_id.between(first, last))).all())
        transitions, webhooks = [], []
        for row, history in zip(rows, histories):
            before = None
            for seq, (state, at) in enumerate(history, start=1):
                transitions.append({"payment_id": ids[row["provider_checkout_id"]], "seq": seq, "from_state": before,
                                    "to_state": state, "reason": "bench", "actor": "bench", "created_at": at})
                before = state
            webhooks.append({"provider": "sandbox", "webhook_id": f"msg_{row['provider_payment_id']}",
                             "event_type": "payment.succeeded", "payload": "{}", "status": "processed",
                             "attempts": 1, "received_at": row["completed_at"], "processed_at": row["completed_at"]})
        db.session.execute(insert(PaymentTransition.__table__), transitions)
        db.session.execute(insert(WebhookEvent.__table__), webhooks)
        db.session.commit()

    def add_settled(self, n: int) -> None:
        """COMPLETED, and one in five REFUNDED (one in ten of those after a failed first attempt)."""
        for start in range(0, n, CHUNK):
            rows, histories = [], []
            for _ in range(min(CHUNK, n - start)):
                i, self.next = self.next, self.next + 1
                created = self.now - timedelta(days=30) + timedelta(seconds=20 * i)
                paid = created + timedelta(seconds=20)
                history = [("PENDING", created), ("COMPLETED", paid)]
                row = self._row(i, "COMPLETED", created)
                if i % 5 == 0:
                    if i % 50 == 0:
                        history += [("REFUND_PENDING", paid + timedelta(minutes=5)),
                                    ("REFUND_FAILED", paid + timedelta(minutes=6))]
                    history += [("REFUND_PENDING", paid + timedelta(minutes=10)),
                                ("REFUNDED", paid + timedelta(minutes=11))]
                    row.update(state="REFUNDED", refunded_at=history[-1][1], refund_reason="VETOED: bench",
                               updated_at=history[-1][1])
                rows.append(row)
                histories.append(history)
            self._insert(rows, histories)

    def add_due(self, n: int) -> None:
        """REFUND_FAILED an hour ago after one attempt: the retry was due 10 s later (its job was lost)."""
        failed_at = self.now - timedelta(hours=1)
        created = failed_at - timedelta(minutes=30)
        paid = created + timedelta(seconds=20)
        rows, histories = [], []
        for _ in range(n):
            i, self.next = self.next, self.next + 1
            row = self._row(i, "REFUND_FAILED", created)
            row.update(refund_reason="VETOED: bench", updated_at=failed_at)
            if self.has_due_column:
                row["refund_retry_at"] = failed_at + timedelta(seconds=10)
            rows.append(row)
            histories.append([("PENDING", created), ("COMPLETED", paid),
                              ("REFUND_PENDING", paid + timedelta(minutes=1)), ("REFUND_FAILED", failed_at)])
        self._insert(rows, histories)

    def sizes(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from app.extensions import db
        from app.models import Payment, PaymentTransition

        sizes = {"payments": db.session.scalar(select(func.count()).select_from(Payment)),
                 "transitions": db.session.scalar(select(func.count()).select_from(PaymentTransition))}
        db.session.rollback()
        return sizes


def timed_run() -> tuple[float, dict]:
    from app.extensions import db
    from app.services.payments import reconcile_payments

    db.session.remove()
    start = time.perf_counter()
    result = reconcile_payments()
    elapsed = time.perf_counter() - start
    db.session.remove()
    return elapsed, result


def still_due() -> int:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Payment

    count = db.session.scalar(select(func.count()).select_from(Payment).where(Payment.state == "REFUND_FAILED"))
    db.session.rollback()
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settled", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    with bench_app() as app, app.app_context():
        from app.extensions import db

        backend = db.engine.dialect.name
        start = time.perf_counter()
        ledger = Ledger()
        ledger.add_settled(args.settled)
        idle_s, _ = timed_run()  # nothing due: the cost of looking
        ledger.add_due(args.due)
        sizes = ledger.sizes()
        build_s = time.perf_counter() - start
        run_s, result = timed_run()
        left = still_due()
        retried_first = args.due - left
        runs, total_s = [run_s], run_s
        while left and len(runs) < 100:
            more_s, _ = timed_run()
            runs.append(more_s)
            total_s += more_s
            now_left = still_due()
            if now_left == left:
                break  # nothing moved: give up rather than loop
            left = now_left

    print(f"ledger: {sizes['payments']:,} payments, {sizes['transitions']:,} transitions "
          f"({backend}, built in {build_s:.1f} s)")
    print(f"{'measure':<52}{'seconds':>9}{'retried':>9}")
    print(f"{'one run, nothing due':<52}{idle_s:>9.3f}{0:>9}")
    print(f"{f'one run, {args.due:,} failed refunds due':<52}{run_s:>9.3f}{retried_first:>9}")
    if len(runs) > 1:
        print(f"{f'all {args.due:,} retried ({len(runs)} runs)':<52}{total_s:>9.3f}{args.due - left:>9}")
    print(json.dumps({"bench": "reconcile", "backend": backend, "settled": args.settled, "due": args.due,
                      "payments": sizes["payments"], "transitions": sizes["transitions"],
                      "idle_run_s": round(idle_s, 3), "run_s": round(run_s, 3), "retried_in_run": retried_first,
                      "result": result, "runs_until_none_due": len(runs), "all_due_s": round(total_s, 3),
                      "left_due": left}))


if __name__ == "__main__":
    main()
