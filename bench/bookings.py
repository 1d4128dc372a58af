"""The venue's DJ search on a big catalogue: DJS DJs (default 5,000) with
weekly availability (evenings, some days off) and BOOKINGS accepted bookings
(default 50,000, 4 hours each: 400,000 slot rows) over the next 120 days.

Measured in-process (services/bookings.search_djs, the query and the
availability check; no page render) against a throw-away SQLite file (or
BENCH_DATABASE_URL): a Saturday-night range with genre + city, with genre
only, and with the range only (every DJ a candidate). Target: p95 ≤ 30 ms.

    python bench/bookings.py [--djs 5000] [--bookings 50000] [--runs 40]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone

from _support import bench_app, summary

CITIES = ("Johannesburg", "Cape Town", "Durban", "Pretoria", "Gqeberha", "Bloemfontein", "Soweto", "Polokwane")
GENRES = ("Amapiano", "Afro house", "Deep house", "Gqom", "Hip hop", "House", "Kwaito", "Techno")


def populate(n_djs: int, n_bookings: int) -> dict:
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import AvailabilityRule, Booking, BookingSlot, DJProfile, User, VenueProfile, utcnow
    from app.models.base import new_public_id

    rng = random.Random(14)
    now = utcnow()
    db.session.execute(insert(User), [{"public_id": new_public_id(), "email": f"bench-dj-{i}@example.com",
                                       "password_hash": "x", "role": "dj", "display_name": f"DJ {i}",
                                       "created_at": now, "updated_at": now} for i in range(n_djs)])
    users = db.session.scalars(select(User.id).where(User.email.like("bench-dj-%")).order_by(User.id)).all()
    db.session.execute(insert(DJProfile), [{
        "public_id": new_public_id(), "user_id": uid, "stage_name": f"DJ Bench {i}", "city": CITIES[i % len(CITIES)],
        "genres": ",".join(rng.sample(GENRES, 2)), "hourly_rate_cents": rng.randrange(30_000, 300_000, 5_000),
        "timezone": "Africa/Johannesburg", "created_at": now} for i, uid in enumerate(users)])
    djs = db.session.scalars(select(DJProfile.id).where(DJProfile.stage_name.like("DJ Bench %"))
                             .order_by(DJProfile.id)).all()
    rules = [{"dj_id": dj, "weekday": day, "start_minute": 18 * 60, "end_minute": 1440}
             for dj in djs for day in range(7) if (dj + day) % 5]  # evenings, about one day in five off
    rules += [{"dj_id": dj, "weekday": day, "start_minute": 0, "end_minute": 4 * 60}
              for dj in djs for day in range(7) if (dj + day - 1) % 5]
    db.session.execute(insert(AvailabilityRule), rules)
    venue_user = User(email="bench-venue@example.com", password_hash="x", role="venue", display_name="Venue")
    db.session.add(venue_user)
    db.session.flush()
    venue = VenueProfile(user_id=venue_user.id, name="Bench Venue", city="Johannesburg", latitude=-26.2, longitude=28.05)
    db.session.add(venue)
    db.session.flush()
    start_day = datetime(now.year, now.month, now.day, 18, tzinfo=timezone.utc)  # 20:00 in Johannesburg
    per_dj = max(1, n_bookings // len(djs))
    bookings, slots = [], []
    for dj in djs:
        for day in rng.sample(range(120), per_dj):
            starts = start_day + timedelta(days=day)
            bookings.append({"public_id": new_public_id(), "dj_id": dj, "venue_id": venue.id, "starts_at": starts,
                             "ends_at": starts + timedelta(hours=4), "status": "accepted", "deposit_cents": 10_000,
                             "message": "", "created_at": now, "updated_at": now})
    for chunk in range(0, len(bookings), 5000):
        db.session.execute(insert(Booking), bookings[chunk:chunk + 5000])
    ids = db.session.execute(select(Booking.id, Booking.dj_id, Booking.starts_at)).all()
    for booking_id, dj, starts in ids:
        slots.extend({"dj_id": dj, "slot_start": starts + timedelta(minutes=30 * k), "booking_id": booking_id}
                     for k in range(8))
    for chunk in range(0, len(slots), 20000):
        db.session.execute(insert(BookingSlot), slots[chunk:chunk + 20000])
    db.session.commit()
    from app.services.bookings import rebuild_weeks

    rebuild_weeks()  # the rules went in by bulk INSERT, past the hook that keeps the masks
    return {"djs": len(djs), "rules": len(rules), "bookings": len(bookings), "slots": len(slots), "venue": venue.id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--djs", type=int, default=5000)
    parser.add_argument("--bookings", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with bench_app() as app, app.app_context():
        from app.extensions import db
        from app.models import VenueProfile, utcnow
        from app.services.bookings import search_djs

        made = populate(args.djs, args.bookings)
        venue = db.session.get(VenueProfile, made["venue"])
        rng = random.Random(7)
        today = utcnow().replace(hour=19, minute=0, second=0, microsecond=0)  # 21:00 in Johannesburg
        cases = {"genre+city+range": lambda: {"genre": rng.choice(GENRES), "city": rng.choice(CITIES)},
                 "genre+range": lambda: {"genre": rng.choice(GENRES)},
                 "range only": lambda: {}}
        results = {}
        for (case_name, filters), sort in [(c, s) for c in cases.items() for s in ("rate", "distance")]:
            name = f"{case_name}, by {sort}"
            times, cpu, found = [], [], []
            for run in range(args.runs):
                starts = today + timedelta(days=rng.randrange(1, 120))
                db.session.expire_all()
                t0, c0 = time.perf_counter(), time.process_time()
                rows = search_djs(venue, starts_at=starts, ends_at=starts + timedelta(hours=5), sort=sort, **filters())
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                found.append(len(rows))
            results[name] = {**summary(times), "cpu_p50_ms": summary(cpu)["p50_ms"], "cpu_p95_ms": summary(cpu)["p95_ms"],
                             "mean_found": round(sum(found) / len(found), 1)}
        load = os.getloadavg()[0]
        print(f"{made['djs']:,} DJs, {made['bookings']:,} bookings ({db.engine.dialect.name}); load average {load:.1f}"
              " (wall times on a shared machine; CPU: this process only, without PostgreSQL's own work)")
        print(f"{'search':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'CPU p50':>9}{'CPU p95':>9}{'found':>7}")
        for name, r in results.items():
            print(f"{name:<34}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['max_ms']:>9.1f}{r['cpu_p50_ms']:>9.1f}"
                  f"{r['cpu_p95_ms']:>9.1f}{r['mean_found']:>7.1f}")
        print(json.dumps({"bench": "bookings", "backend": db.engine.dialect.name, "load": load, "data": made,
                          "search": results}))


if __name__ == "__main__":
    main()
