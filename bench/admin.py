"""The admin's payments explorer on a big ledger: each search shape and a
payment's timeline, as whole pages (query + render) through the app.

The ledger: the reconciliation bench's (bench/reconcile.py): N settled
payments with their histories and webhooks (default 100,000), plus D longer
histories (failed refunds, default 13,000), so ~300,000 transitions; each
webhook linked to its payment, as processing links it. Measured in-process
against a throw-away SQLite file (or BENCH_DATABASE_URL), signed in as the
demo admin. Target: p95 ≤ 50 ms for every search and the timeline, and for
the overview's platform metrics (each period; the page reads the sums the
every-minute job keeps, and the bench also times computing them afresh, the
job's work, which has no page-time target), the webhook inbox and the dead
letter queue.

    python bench/admin.py [--settled 100000] [--long 13000] [--runs 30]
"""
from __future__ import annotations

import argparse
import json
import random
import time

from _support import bench_app, summary
from reconcile import Ledger


def link_webhooks() -> None:
    """Processing sets webhook_events.payment_id; the bench's bulk rows name
    their payment in webhook_id ("msg_" + its provider payment id)."""
    from sqlalchemy import bindparam, select, update

    from app.extensions import db
    from app.models import Payment, WebhookEvent

    pairs = [{"wid": f"msg_{provider_id}", "pid": payment_id} for provider_id, payment_id in db.session.execute(
        select(Payment.provider_payment_id, Payment.id).where(Payment.provider_payment_id.is_not(None)))]
    statement = (update(WebhookEvent.__table__)
                 .where(WebhookEvent.__table__.c.provider == "sandbox",
                        WebhookEvent.__table__.c.webhook_id == bindparam("wid"))
                 .values(payment_id=bindparam("pid")))
    db.session.connection().execute(statement, pairs)  # executemany through the (provider, webhook_id) index
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settled", type=int, default=100_000)
    parser.add_argument("--long", type=int, default=13_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with bench_app() as app, app.app_context():
        from sqlalchemy import select, text

        from app.extensions import db
        from app.models import GuestDevice, Payment

        backend = db.engine.dialect.name
        start = time.perf_counter()
        ledger = Ledger()
        ledger.add_settled(args.settled)
        ledger.add_due(args.long)
        link_webhooks()
        if backend == "postgresql":
            # A live database has its statistics; without them autovacuum
            # analyses the fresh tables in the middle of the measurement.
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        sizes = ledger.sizes()
        build_s = time.perf_counter() - start
        rng = random.Random(13)
        refs = db.session.scalars(select(Payment.public_id).order_by(Payment.id)).all()
        sample = [refs[rng.randrange(len(refs))] for _ in range(args.runs)]
        checkout = db.session.scalar(select(Payment.provider_checkout_id).where(Payment.public_id == sample[0]))
        device = db.session.scalar(select(GuestDevice.public_id).where(GuestDevice.public_id.like("bench-%")))
        db.session.rollback()

        client = app.test_client()
        assert client.post("/login", data={"email": "admin@example.com", "password": "beatmatch-demo"}).status_code == 303
        shapes = {
            "newest first (page 1)": lambda i: "/admin/payments",
            "last 6 characters of a reference": lambda i: f"/admin/payments?q={sample[i][-6:]}",
            "a whole reference": lambda i: f"/admin/payments?q={sample[i]}",
            "a Yoco checkout id": lambda i: f"/admin/payments?q={checkout}",
            "a fan device": lambda i: f"/admin/payments?q={device}",
            "a DJ's name": lambda i: "/admin/payments?q=thabo",
            "state REFUNDED": lambda i: "/admin/payments?state=REFUNDED",
            "amount R20, largest first": lambda i: "/admin/payments?amount=20&sort=amount_desc",
            "one day": lambda i: "/admin/payments?date_from=2026-11-20&date_to=2026-11-20",
            "page 50": lambda i: "/admin/payments?page=50",
            "stuck payments": lambda i: "/admin/payments/stuck",
            "a payment's timeline": lambda i: f"/admin/payments/{sample[i]}",
            "overview: today": lambda i: "/admin/",
            "overview: 7 days": lambda i: "/admin/?period=7d",
            "overview: 30 days": lambda i: "/admin/?period=30d",
            "webhook inbox (page 1)": lambda i: "/admin/webhooks",
            "webhook inbox: failed": lambda i: "/admin/webhooks?status=failed",
            "webhook inbox: a payment": lambda i: f"/admin/webhooks?payment={sample[i]}",
            "dead letter queue": lambda i: "/admin/jobs",
        }
        figures = {}
        for name, url_of in shapes.items():
            client.get(url_of(0))  # warm
            times, cpu = [], []
            for i in range(args.runs):
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.get(url_of(i))
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            figures[name] = summary(times) | {"cpu_p95_ms": summary(cpu)["p95_ms"]}
        # What the every-minute job (and a view that finds nothing kept) does:
        # the period's sums computed afresh, without the page around them.
        from app.services.admin import metrics
        for period in metrics.PERIODS:
            times, cpu = [], []
            for _ in range(max(5, args.runs // 3)):
                t0, c0 = time.perf_counter(), time.process_time()
                metrics.platform_metrics(period, max_age=0)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                db.session.rollback()
            figures[f"metrics computed afresh: {period}"] = summary(times) | {"cpu_p95_ms": summary(cpu)["p95_ms"]}

    print(f"ledger: {sizes['payments']:,} payments, {sizes['transitions']:,} transitions "
          f"({backend}, built in {build_s:.1f} s)")
    # cpu p95: this process's CPU time, which other load on the machine does not
    # inflate as it does wall time (on SQLite all the work; on PostgreSQL the app's share).
    print(f"{'page':<40}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'cpu p95':>9}")
    for name, f in figures.items():
        print(f"{name:<40}{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}{f['max_ms']:>9.1f}{f['cpu_p95_ms']:>9.1f}")
    print(json.dumps({"bench": "admin", "backend": backend, "payments": sizes["payments"],
                      "transitions": sizes["transitions"], "pages": figures}))


if __name__ == "__main__":
    main()
