"""DJ analytics on two years of history: the page and its fragments, one incremental rollup, a rebuild.

The demo DJ (Africa/Johannesburg) gets 400 past events (one set each, 21:00-03:00
local, about every 1.8 days over two years), 200,000 paid requests (80% played
after 1-60 min, 10% vetoed, 8% expired, 2% played then refunded) and 50,000
tips (3% refunded), from 5,000 phones, on 2,000 tracks of 20 genres. Rows go in
by bulk INSERT in their final states (no payment history: analytics never reads
it). Measured in-process against a throw-away SQLite file (or BENCH_DATABASE_URL):

- a full rebuild of the DJ's rollups (`analytics.rebuild`, what `flask analytics-rebuild` runs);
- the page (query + render), the htmx fragment and a CSV for several ranges: p95 target ≤ 50 ms, cold
  (no kept copy: every figure read from the rollups) and with the kept copy of the range's figures
  (valid while none of its buckets changed: one small query on analytics_buckets);
- the incremental rollup for one payment (`jobs.analytics.refresh_payments([id])`'s work, a refund of
  one of the night's requests): p95 target ≤ 20 ms.

    python bench/analytics.py [--events 400] [--requests 200000] [--tips 50000] [--runs 30]
    python bench/analytics.py --profile 365d    # cProfile of cold figure reads of one preset, then stop
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from _support import bench_app, summary

GENRES = ("house", "amapiano", "gqom", "afro house", "deep house", "techno", "hip hop", "r&b", "pop", "dance pop",
          "kwaito", "disco", "funk", "soul", "drum and bass", "trance", "latin", "reggaeton", "rock", "jazz")
CHUNK = 5_000


def _chunks(rows: list[dict]):
    for start in range(0, len(rows), CHUNK):
        yield rows[start:start + CHUNK]


def build(dj_id: int, events: int, requests: int, tips: int) -> dict:
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import DJSet, Event, GuestDevice, Payment, SongRequest, Tip, Track
    from app.services.library.merge import track_keys

    rng = random.Random(7)
    zone = ZoneInfo("Africa/Johannesburg")
    now = datetime.now(zone).replace(hour=21, minute=0, second=0, microsecond=0)
    conn = db.session.connection()

    tracks = [{"public_id": secrets.token_urlsafe(12), "dj_id": dj_id, "title": f"Bench Song {n}",
               "artist": f"Bench Artist {n % 400}", "genre": GENRES[n % len(GENRES)], "popularity": 0,
               "requestable": True, "source": "csv", "title_key": track_keys(f"Bench Artist {n % 400}",
                                                                              f"Bench Song {n}")[1],
               "artist_key": track_keys(f"Bench Artist {n % 400}", f"Bench Song {n}")[0],
               "created_at": now, "updated_at": now} for n in range(2_000)]
    conn.execute(insert(Track), tracks)
    track_ids = list(db.session.scalars(select(Track.id).where(Track.title.like("Bench Song %"))))
    conn.execute(insert(GuestDevice), [{"public_id": f"bench-an-{n}", "created_at": now, "last_seen_at": now}
                                       for n in range(5_000)])
    device_ids = list(db.session.scalars(select(GuestDevice.id).where(GuestDevice.public_id.like("bench-an-%"))))

    sets = []
    for n in range(events):
        start = (now - timedelta(days=730 * (events - n) / events)).replace(hour=21, minute=0)
        start_utc = start.astimezone(ZoneInfo("UTC"))
        event_id = conn.execute(insert(Event).values(
            public_id=secrets.token_urlsafe(12), dj_id=dj_id, name=f"Bench Night {n}", venue_name="The Bench",
            starts_at=start_utc, ends_at=start_utc + timedelta(hours=6), timezone=zone.key, status="ended",
            created_at=start_utc, updated_at=start_utc)).inserted_primary_key[0]
        set_id = conn.execute(insert(DJSet).values(
            public_id=secrets.token_urlsafe(12), event_id=event_id, starts_at=start_utc,
            ends_at=start_utc + timedelta(hours=6), status="ended", ended_at=start_utc + timedelta(hours=6),
            created_at=start_utc)).inserted_primary_key[0]
        sets.append((set_id, start_utc))

    def moment(start):
        return start + timedelta(seconds=rng.randrange(6 * 3600))

    payments, song_requests, tip_rows = [], [], []
    for n in range(requests):
        set_id, start = sets[n % len(sets)]
        at = moment(start)
        roll = rng.random()
        status = "played" if roll < 0.82 else "vetoed" if roll < 0.92 else "expired"
        refunded = status != "played" or roll < 0.02
        state = "REFUNDED" if refunded else "COMPLETED"
        cents = rng.choice((1500, 2000, 2500, 3000, 5000))
        public_id = secrets.token_urlsafe(12)
        track_id, device_id = rng.choice(track_ids), rng.choice(device_ids)
        payments.append({"public_id": public_id, "purpose": "request", "state": state, "amount_cents": cents,
                         "currency": "ZAR", "provider": "sandbox", "set_id": set_id, "track_id": track_id,
                         "device_id": device_id, "created_at": at, "updated_at": at, "completed_at": at,
                         "refunded_at": at + timedelta(minutes=30) if refunded else None})
        playing = at + timedelta(seconds=rng.randrange(60, 3600)) if status == "played" else None
        song_requests.append({"public_id": secrets.token_urlsafe(12), "set_id": set_id, "track_id": track_id,
                              "device_id": device_id, "amount_cents": cents, "status": status,
                              "shoutout_status": "none", "vote_count": 0, "created_at": at, "updated_at": at,
                              "accepted_at": playing, "playing_at": playing,
                              "closed_at": (playing or at) + timedelta(minutes=3), "_payment": public_id})
    for n in range(tips):
        set_id, start = sets[n % len(sets)]
        at = moment(start)
        refunded = rng.random() < 0.03
        cents = rng.choice((1000, 2000, 5000, 10000))
        public_id = secrets.token_urlsafe(12)
        device_id = rng.choice(device_ids[:1500])  # fewer phones tip, some often
        payments.append({"public_id": public_id, "purpose": "tip", "state": "REFUNDED" if refunded else "COMPLETED",
                         "amount_cents": cents, "currency": "ZAR", "provider": "sandbox", "set_id": set_id,
                         "track_id": None, "device_id": device_id, "created_at": at, "updated_at": at,
                         "completed_at": at, "refunded_at": at + timedelta(minutes=30) if refunded else None})
        tip_rows.append({"public_id": secrets.token_urlsafe(12), "set_id": set_id, "dj_id": dj_id,
                         "device_id": device_id, "amount_cents": cents, "message_status": "none",
                         "status": "refunded" if refunded else "received", "created_at": at, "_payment": public_id})
    for chunk in _chunks(payments):
        conn.execute(insert(Payment.__table__), chunk)
    ids = dict(db.session.execute(select(Payment.public_id, Payment.id).where(Payment.provider == "sandbox")).all())
    for rows, model in ((song_requests, SongRequest), (tip_rows, Tip)):
        for row in rows:
            row["payment_id"] = ids[row.pop("_payment")]
        for chunk in _chunks(rows):
            conn.execute(insert(model.__table__), chunk)
    db.session.commit()
    return {"events": events, "requests": requests, "tips": tips}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--tips", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", default="", help="a preset (e.g. 365d): profile its cold reads and stop")
    args = parser.parse_args()
    with bench_app() as app, app.app_context():
        from sqlalchemy import func, select, text

        from app.extensions import db
        from app.models import AnalyticsTrack, DJProfile, Event, Payment, SongRequest, User
        from app.services import analytics

        backend = db.engine.dialect.name
        dj = db.session.scalar(select(DJProfile).join(User).where(User.email == "dj@example.com"))
        dj_id = dj.id
        t0 = time.perf_counter()
        sizes = build(dj_id, args.events, args.requests, args.tips)
        build_s = time.perf_counter() - t0
        if backend == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        t0 = time.perf_counter()
        analytics.rebuild(dj_id)
        rebuild_s = time.perf_counter() - t0
        if backend == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        track_rows = db.session.scalar(select(func.count()).select_from(AnalyticsTrack))
        newest = db.session.scalar(select(Event.public_id).where(Event.dj_id == dj_id, Event.name.like("Bench%"))
                                   .order_by(Event.starts_at.desc()))
        db.session.rollback()
        if args.profile:
            _profile(app, dj_id, args.profile, args.runs)
            return

        client = app.test_client()
        assert client.post("/login", data={"email": "dj@example.com", "password": "beatmatch-demo"}).status_code == 303
        shapes = {
            "page, last 30 days": "/dj/analytics?range=30d",
            "page, this month": "/dj/analytics?range=month",
            "page, last 90 days": "/dj/analytics?range=90d",
            "page, last 365 days": "/dj/analytics?range=365d",
            "page, two years (custom)": f"/dj/analytics?range=custom&from={(datetime.now() - timedelta(days=731)).date()}"
                                        f"&to={datetime.now().date()}",
            "page, one event (365 days)": f"/dj/analytics?range=365d&event={newest}",
            "fragment (htmx), last 365 days": "/dj/analytics?range=365d",
            "CSV top songs, last 365 days": "/dj/analytics/export.csv?figure=songs&range=365d",
        }
        figures, cpu = {}, {}
        load_before = os.getloadavg()[0]
        from app.extensions import redis_store

        def drop_copies() -> None:
            analytics.forget_local()
            for key in redis_store.client.scan_iter("bmm:analytics:last:*"):
                redis_store.client.delete(key)

        cold_shapes = {f"{name} (cold)": url for name, url in shapes.items()}
        warm_shapes = {f"{name} (kept copy)": url for name, url in shapes.items()}
        for name, url in {**cold_shapes, **warm_shapes}.items():
            headers = {"HX-Request": "true"} if "fragment" in name else {}
            client.get(url, headers=headers)  # warm the process (and keep a copy)
            times, cpu_times = [], []
            for _ in range(args.runs):
                if name.endswith("(cold)"):
                    drop_copies()  # no kept copy: every figure read from the rollups
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.get(url, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                cpu_times.append((time.process_time() - c0) * 1000)
                assert response.status_code == 200, (name, response.status_code)
                assert b"live figures unavailable" not in response.data, name
            figures[name] = summary(times)
            cpu[name] = summary(cpu_times)

        # one payment's incremental rollup: a paid request of the newest night is refunded
        from jobs.analytics import refresh_payments

        paid = list(db.session.scalars(
            select(SongRequest.payment_id).join(Payment, Payment.id == SongRequest.payment_id)
            .where(Payment.state == "COMPLETED").order_by(SongRequest.id.desc()).limit(args.runs)))
        times, cpu_times = [], []
        for payment_id in paid:
            db.session.execute(Payment.__table__.update().where(Payment.__table__.c.id == payment_id)
                               .values(state="REFUNDED"))
            db.session.commit()
            t0, c0 = time.perf_counter(), time.process_time()
            refresh_payments([payment_id])
            times.append((time.perf_counter() - t0) * 1000)
            cpu_times.append((time.process_time() - c0) * 1000)
        incremental, cpu["incremental rollup, one payment"] = summary(times), summary(cpu_times)
        analytics.catch_up()  # the first run rebuilds and sets the mark
        t0 = time.perf_counter()
        analytics.catch_up()  # the 5-minute run: the refunds above are within its overlap
        catch_up_ms = (time.perf_counter() - t0) * 1000
        load_after = os.getloadavg()[0]

    print(f"history: {sizes['events']} events, {sizes['requests']:,} requests, {sizes['tips']:,} tips "
          f"({backend}, built in {build_s:.1f} s; {track_rows:,} song rollup rows)")
    print(f"catch-up run (the last refunds in its overlap): {catch_up_ms:.0f} ms")
    print(f"full rebuild: {rebuild_s:.1f} s; load average {load_before:.1f} -> {load_after:.1f} "
          f"(wall times on a shared machine; CPU: this process only, so without PostgreSQL's own work)")
    print(f"{'measure':<52}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'CPU p50':>9}{'CPU p95':>9}")
    for name, f in {**figures, "incremental rollup, one payment": incremental}.items():
        c = cpu[name]
        print(f"{name:<52}{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}{f['max_ms']:>9.1f}{c['p50_ms']:>9.1f}{c['p95_ms']:>9.1f}")
    print(json.dumps({"bench": "analytics", "backend": backend, **sizes, "rebuild_s": round(rebuild_s, 2), "catch_up_ms": round(catch_up_ms, 1),
                      "load": [load_before, load_after], "pages": figures, "incremental": incremental,
                      "cpu": cpu}))


def _profile(app, dj_id: int, preset: str, runs: int) -> None:
    """Cold reads of one preset's figures under cProfile, and each SQL statement's time."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from app.extensions import db
    from app.models import DJProfile, utcnow
    from app.services import analytics

    dj = db.session.get(DJProfile, dj_id)
    span = analytics.period(preset, utcnow().astimezone(analytics.dj_zone(dj)).date())
    statements: dict[str, list[float]] = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        context._bench_t0 = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        statements.setdefault(" ".join(statement.split())[:150], []).append(
            (time.perf_counter() - context._bench_t0) * 1000)

    analytics.figures(dj_id, span)  # warm
    db.session.rollback()
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    profiler = cProfile.Profile()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        profiler.enable()
        analytics.figures(dj_id, span)
        profiler.disable()
        times.append((time.perf_counter() - t0) * 1000)
        db.session.rollback()
    event.remove(db.engine, "before_cursor_execute", before)
    event.remove(db.engine, "after_cursor_execute", after)
    print(f"figures({preset}) cold, {runs} runs: {summary(times)}")
    for statement, ms in sorted(statements.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(ms) / len(ms):7.1f} ms x{len(ms):<3} {statement}")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
