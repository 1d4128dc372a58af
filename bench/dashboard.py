"""The DJ dashboard's live parts with a long queue: server time (p50/p95) of

- the htmx fragment (`GET /dj/sets/<id>/live`, what the 10-second poll gets),
- the live hub's render of the same parts (`app/live/render.dj_parts`, per change),
- an action answered with the parts (accept, then undo, each with a new key),
- the whole dashboard page,

with N pending requests (default 200) from N different fans in the demo's
live set; and the **bytes per change** the DJ's tablet receives: for a vote on
one request, a new paid request, accept, veto and play of one request, the
message the live hub queues for a DJ dashboard's socket (the hub's own
`_broadcast`, with the change since its previous message: render.dj_changes),
next to the whole list (what every change sent before the small pushes: the
fans' public parts and the DJ's whole parts), and the action's answer with
the socket up (the toast) and down (the parts). In-process (Flask test client),
a throw-away SQLite file (or BENCH_DATABASE_URL) and the Redis at REDIS_URL
(a private one otherwise).

    python bench/dashboard.py [--requests 200] [--runs 200]
"""
from __future__ import annotations

import argparse
import json
import secrets
import time
from datetime import timedelta

from _support import bench_app, summary


def paid_request(dj_set, track, fan_public_id: str, **fields) -> None:
    """A paid pending request of R20 from a fan of its own (in the session, not committed)."""
    from app.extensions import db
    from app.models import GuestDevice, Payment, SongRequest
    from app.services.payments.ledger import record_transition

    fan = GuestDevice(public_id=fan_public_id)
    db.session.add(fan)
    db.session.flush()
    payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", device_id=fan.id,
                      set_id=dj_set.id, track_id=track.id)
    record_transition(payment, "PENDING", "bench")
    record_transition(payment, "COMPLETED", "bench")
    db.session.add(SongRequest(set_id=dj_set.id, track_id=track.id, device_id=fan.id, payment_id=payment.id,
                               amount_cents=2000, **fields))


def fill_queue(app, n: int) -> tuple[str, str]:
    """N paid pending requests (votes and ages spread out); returns (set id, one request id)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import DJSet, SongRequest, Track, utcnow

    with app.app_context():
        dj_set = db.session.scalar(select(DJSet).where(DJSet.status == "live"))
        tracks = db.session.scalars(select(Track).where(Track.dj_id == dj_set.event.dj_id)
                                    .order_by(Track.id).offset(100).limit(n)).all()
        now = utcnow()
        for i, track in enumerate(tracks):
            paid_request(dj_set, track, f"bench-fan-{i}", vote_count=i % 7,
                         created_at=now - timedelta(seconds=30 * (n - i)),
                         shoutout="Happy birthday!" if i % 5 == 0 else None,
                         shoutout_status="approved" if i % 5 == 0 else "none")
        db.session.commit()
        first = db.session.scalar(select(SongRequest.public_id).where(
            SongRequest.set_id == dj_set.id, SongRequest.status == "pending").order_by(SongRequest.id.desc()))
        return dj_set.public_id, first


def bytes_per_change(app, dj, set_id: str, n: int) -> list[dict]:
    """Each typical change, then what the hub sends the DJ's dashboard for it."""
    import secrets

    from sqlalchemy import select

    from app.extensions import db
    from app.live import render
    from app.live.hub import Connection, Hub
    from app.models import DJSet, GuestDevice, SongRequest, Track
    from app.services import live
    from app.services.live import Position, set_vote

    hub = Hub(app)
    with app.app_context():
        dj_set = db.session.scalar(select(DJSet).where(DJSet.public_id == set_id))
        event_id, event_pk = dj_set.event.public_id, dj_set.event_id
    conn = Connection(event_id, None, is_dj=True)
    seq = iter(range(1, 1000))

    def pushed() -> tuple[int, int, float]:
        """(bytes the DJ's socket gets, bytes of the whole list as before, ms of the hub's render)."""
        position = Position(next(seq), "bench")
        start = time.perf_counter()
        hub._broadcast(event_id, position, [conn])
        ms = (time.perf_counter() - start) * 1000
        text = conn.queue.get_nowait()
        with app.test_request_context("/"):
            event = db.session.get(DJSet, db.session.scalar(select(DJSet.id).where(DJSet.public_id == set_id))).event
            state = live.load_state(event)
            whole = render.message(position, render.public_parts(state)) + render.EMPTY_VIEWER_STATE + \
                render.dj_parts(state.dj_set)
            db.session.remove()
        return len(text.encode()), len(whole.encode()), ms

    def waiting(offset: int) -> str:
        with app.app_context():
            return db.session.scalar(select(SongRequest.public_id).where(
                SongRequest.set_id == select(DJSet.id).where(DJSet.public_id == set_id).scalar_subquery(),
                SongRequest.status == "pending").order_by(SongRequest.id.desc()).offset(offset))

    def vote():
        with app.app_context():
            from app.models import Event
            fan = GuestDevice(public_id=f"bench-voter-{secrets.token_hex(4)}")
            db.session.add(fan)
            db.session.commit()
            set_vote(db.session.get(Event, event_pk), waiting(3), fan, vote=True)
            db.session.commit()

    def new_request():
        with app.app_context():
            dj_set = db.session.scalar(select(DJSet).where(DJSet.public_id == set_id))
            track = db.session.scalars(select(Track).where(Track.dj_id == dj_set.event.dj_id)
                                       .order_by(Track.id).offset(100 + n).limit(1)).one()
            paid_request(dj_set, track, "bench-newcomer")
            db.session.commit()

    answers = {}

    def action(name: str, offset: int, **form):
        def run():
            request_id = waiting(offset)
            for live_socket in ("closed", "open"):  # the answer's size both ways; the second is a replay
                response = dj.post(f"/dj/requests/{request_id}/{name}", data=form, headers={
                    "HX-Request": "true", "Idempotency-Key": f"bench-{name}-{request_id}", "X-Live-Socket": live_socket})
                assert response.status_code == 200, (name, response.status_code, response.data[:300])
                answers[(name, live_socket)] = len(response.data)
        return run

    pushed()  # the hub's first message for the event (it has sent nothing to follow on from)
    rows = []
    for name, change in (("vote on one request", vote), ("new paid request", new_request),
                         ("accept one request", action("accept", 5)),
                         ("veto one request", action("veto", 7, reason="Not right for this venue")),
                         ("play one request", action("playing", 9))):
        change()
        now, before, ms = pushed()
        row = {"change": name, "bytes": now, "whole_list_bytes": before, "hub_ms": round(ms, 1)}
        short = name.split()[0]
        if (short, "open") in answers:
            row.update(answer_socket_up=answers[(short, "open")], answer_socket_down=answers[(short, "closed")])
        rows.append(row)
    return rows


def timed(times: list[float], call):
    start = time.perf_counter()
    result = call()
    times.append((time.perf_counter() - start) * 1000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with bench_app() as app:
        from app.live.render import dj_parts as render_dj_live
        from app.extensions import db
        from app.models import DJSet
        from app.services.demo import DEMO_LOGINS, DEMO_PASSWORD

        set_id, request_id = fill_queue(app, args.requests)
        dj = app.test_client()
        dj.post("/login", data={"email": DEMO_LOGINS["dj"], "password": DEMO_PASSWORD})
        htmx = {"HX-Request": "true"}
        fragment_url = f"/dj/sets/{set_id}/live"

        cases: dict[str, tuple[list[float], int]] = {}

        def run(name, call, runs=args.runs, warm=10):
            for _ in range(warm):
                call()
            times, size = [], 0
            for _ in range(runs):
                size = timed(times, call)
            cases[name] = (times, size)

        def fragment():
            response = dj.get(fragment_url, headers=htmx)
            assert response.status_code == 200, response.status_code
            return len(response.data)

        def hub_render():
            with app.test_request_context("/"):
                dj_set = db.session.scalar(db.select(DJSet).where(DJSet.public_id == set_id))
                html = render_dj_live(dj_set)
                db.session.remove()
                return len(html.encode())

        def page():
            response = dj.get("/dj/")
            assert response.status_code == 200, response.status_code
            return len(response.data)

        def action():
            sizes = 0
            for name in ("accept", "undo"):
                response = dj.post(f"/dj/requests/{request_id}/{name}",
                                   headers={**htmx, "Idempotency-Key": secrets.token_hex(16)})
                assert response.status_code == 200, (name, response.status_code, response.data[:300])
                sizes = len(response.data)
            return sizes

        run("fragment (htmx poll)", fragment)
        run("hub render (per change)", hub_render)
        run("dashboard page", page, runs=max(20, args.runs // 4))
        # Each call is two actions (accept, undo); time per action below.
        run("action + fragment", action, runs=max(20, args.runs // 4), warm=2)
        times, size = cases["action + fragment"]
        cases["action + fragment"] = ([t / 2 for t in times], size)
        changes = bytes_per_change(app, dj, set_id, args.requests)

    print(f"DJ dashboard with {args.requests} pending requests")
    print(f"{'what':<26}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'bytes':>10}")
    results = {}
    for name, (times, size) in cases.items():
        s = summary(times)
        results[name] = {**s, "bytes": size}
        print(f"{name:<26}{s['p50_ms']:>9}{s['p95_ms']:>9}{s['max_ms']:>9}{size:>10}")
    key = {"fragment (htmx poll)": "fragment", "hub render (per change)": "hub_render",
           "dashboard page": "page", "action + fragment": "action"}
    print(f"\nBytes per change to the DJ's tablet ({args.requests} waiting): the hub's message now, the whole list "
          "as before; an action's answer with the socket up / down")
    print(f"{'change':<22}{'now':>9}{'before':>10}{'hub ms':>8}{'answer up':>11}{'down':>9}")
    for c in changes:
        print(f"{c['change']:<22}{c['bytes']:>9}{c['whole_list_bytes']:>10}{c['hub_ms']:>8}"
              f"{c.get('answer_socket_up', ''):>11}{c.get('answer_socket_down', ''):>9}")
    print(json.dumps({"bench": "dashboard", "requests": args.requests, "runs": args.runs,
                      **{key[name]: r for name, r in results.items()}, "changes": changes}))


if __name__ == "__main__":
    main()
