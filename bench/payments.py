"""Payment speed, with a real worker and real HTTP.

1. Checkout creation: a fan taps Pay -> rules, slot hold, payment row, the
   Yoco client's HTTP call to the sandbox -> 303 to the hosted page.
2. Webhook to request: a signed `payment.succeeded` webhook arrives at
   POST /webhooks/yoco -> stored, answered -> an RQ worker (AppWorker,
   running jobs in its own process) creates the request -> committed and published on the
   event's Redis channel. Measured from sending the webhook to receiving
   the published message.

    python bench/payments.py [--n 60]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from _support import bench_app, summary

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=60)
    args = parser.parse_args()
    with bench_app() as app:
        import redis
        from sqlalchemy import select
        from werkzeug.serving import make_server

        from app.extensions import db
        from app.models import DJSet, Payment
        from app.services.common.tasks import QUEUES
        from app.services.live import channel
        from app.services.payments.signing import sign_headers
        from _support import live_event, tracks
        from tests.payment_support import Fan, checkout_id_from

        sock = __import__("socket").socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        base = f"http://127.0.0.1:{port}"
        app.config.update(SANDBOX_BASE_URL=base, YOCO_API_BASE=f"{base}/sandbox/yoco")
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {**os.environ, "SANDBOX_BASE_URL": base, "SECRET_KEY": app.config["SECRET_KEY"]}
        worker = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class", "jobs.worker.AppWorker",
             "--with-scheduler", "--url", app.config["REDIS_URL"], "--path", str(ROOT), *QUEUES],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with app.app_context():
                event, dj_set = live_event()
                db.session.get(DJSet, dj_set.id).hourly_cap = 100_000
                db.session.commit()
                songs = [t.public_id for t in tracks(event.dj_id, args.n * 2)]
                event_id = event.public_id

            # 1. Checkout creation against the sandbox.
            checkout_ms, checkouts = [], []
            for i in range(args.n + 5):
                fan = Fan(base)
                sheet = fan.open_sheet(event_id, songs[i])
                t0 = time.perf_counter()
                response = fan.pay(event_id, songs[i], sheet=sheet)
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status_code == 303, response.text[:500]
                if i >= 5:  # warm-up
                    checkout_ms.append(elapsed)
                checkouts.append(checkout_id_from(response))

            # 2. Webhook -> committed request -> published.
            listener = redis.Redis.from_url(app.config["REDIS_URL"]).pubsub()
            listener.subscribe(channel(event_id))
            listener.get_message(timeout=1)
            time.sleep(1.0)  # the worker is up
            webhook_ms = []
            secret = app.config["YOCO_WEBHOOK_SECRET"]
            import requests

            for i, checkout in enumerate(checkouts):
                with app.app_context():
                    payment = db.session.scalar(select(Payment).where(Payment.provider_checkout_id == checkout))
                    public_id = payment.public_id
                body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment.succeeded",
                                   "createdDate": "2026-11-22T00:00:00Z",
                                   "payload": {"id": f"p_{uuid.uuid4().hex[:20]}", "type": "payment",
                                               "status": "succeeded", "amount": payment.amount_cents,
                                               "currency": "ZAR", "mode": "test",
                                               "metadata": {"checkoutId": checkout, "paymentId": public_id}}})
                headers = {**sign_headers(secret, f"msg_{uuid.uuid4().hex}", body), "Content-Type": "application/json"}
                t0 = time.perf_counter()
                assert requests.post(f"{base}/webhooks/yoco", data=body, headers=headers, timeout=10).ok
                while True:
                    message = listener.get_message(timeout=5)
                    if message is None:
                        raise RuntimeError("no live update within 5 s")
                    if message["type"] == "message" and json.loads(message["data"])["kind"] == "request_created":
                        break
                if i >= 5:
                    webhook_ms.append((time.perf_counter() - t0) * 1000)
        finally:
            worker.terminate()
            worker.wait(timeout=10)
            server.shutdown()

    create, confirm = summary(checkout_ms), summary(webhook_ms)
    print(f"{'measure':<46}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    print(f"{'checkout creation (Pay -> hosted page URL)':<46}{create['p50_ms']:>9}{create['p95_ms']:>9}{create['max_ms']:>9}")
    print(f"{'webhook -> request committed + published':<46}{confirm['p50_ms']:>9}{confirm['p95_ms']:>9}{confirm['max_ms']:>9}")
    print(json.dumps({"bench": "payments", "n": args.n, "checkout_create": create, "webhook_to_request": confirm}))


if __name__ == "__main__":
    main()
