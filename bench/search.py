"""Library search speed: p50/p95 server time of search + filter + sort requests
over a 10,000+ track library, and the size of the results fragment.

The library is the demo DJ's real tracks (the 5,130-row Spotify export,
merged by artist and title) plus generated ones made from the same words.
Each query is an htmx request for the results fragment through the whole
Flask stack (routing, parsing, search, rendering), in-process.

    python bench/search.py [--tracks 10000] [--rounds 20]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from urllib.parse import urlencode

from _support import bench_app, summary

QUERIES = [
    {"q": "despacito"}, {"q": "dspacito"}, {"q": "beyonce"}, {"q": "weeknd blinding"},
    {"q": "blinding lights"}, {"q": "senorita"}, {"q": "ed sheeran"}, {"q": "edd sheeran perfect"},
    {"q": "bad gu"}, {"q": "shape of yu"}, {"q": "calvn harris"}, {"q": "remix"},
    {"q": "love", "genre": "pop"}, {"q": "the", "sort": "az"},
    {"q": "dance", "genre": ["edm", "pop"], "bpm_min": 118, "bpm_max": 130},
    {"q": "", "genre": "latin", "sort": "price"}, {"q": "", "bpm_min": 120, "bpm_max": 124},
    {"q": "", "sort": "az", "page": 7}, {"q": "", "price_max": 25, "sort": "price_desc"},
    {"q": "remix", "page": 3}, {"q": "daddy yankee", "genre": "latin"}, {"q": "queen bohemian"},
    {"q": "martin garix"}, {"q": "xyzzy nothing"},
]


def grow_library(app, target: int) -> int:
    """Add generated tracks (words of real titles and artists) until the library has `target`."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import DJProfile, Track
    from app.services.library import TrackRow, merge_tracks

    rng = random.Random(5130)
    with app.app_context():
        dj = db.session.scalar(select(DJProfile).where(DJProfile.stage_name == "DJ Thabo"))
        real = db.session.scalars(select(Track).where(Track.dj_id == dj.id)).all()
        words = sorted({w for t in real for w in t.title.split() if w.isalpha() and len(w) > 2})
        artists = sorted({t.artist for t in real})
        genres = sorted({t.genre for t in real if t.genre})
        count = len(real)
        while count < target:  # generated titles can collide and merge: top up until there
            rows = []
            for _ in range(target - count):
                title = " ".join(rng.sample(words, rng.randint(1, 4)))
                rows.append(TrackRow(title, rng.choice(artists), rng.choice(genres),
                                     round(rng.uniform(70, 180), 1), rng.randint(120, 420), rng.randint(0, 90)))
            merge_tracks(dj, rows, "demo")
            db.session.flush()
            count = db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj.id))
        # A few price overrides, so price filters and sorts have something to do.
        for track in rng.sample(list(db.session.scalars(select(Track).where(Track.dj_id == dj.id))), 500):
            track.price_override_cents = rng.choice([1000, 1500, 3000, 5000])
        from app.services.library.search import bump_library_version

        bump_library_version(dj.id)
        db.session.commit()
        return db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj.id))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with bench_app() as app:
        from sqlalchemy import select

        from app.extensions import db
        from app.models import Event

        tracks = grow_library(app, args.tracks)
        with app.app_context():
            event_id = db.session.scalar(select(Event.public_id).where(Event.status == "live"))
        client = app.test_client()
        headers = {"HX-Request": "true"}
        urls = [f"/e/{event_id}?{urlencode(q, doseq=True)}" for q in QUERIES]

        start = time.perf_counter()
        client.get(urls[0], headers=headers)  # builds the index
        build_ms = (time.perf_counter() - start) * 1000
        for url in urls:  # warm-up
            client.get(url, headers=headers)

        times, sizes, per_query = [], [], {}
        for _ in range(args.rounds):
            for url, query in zip(urls, QUERIES):
                t0 = time.perf_counter()
                response = client.get(url, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status_code == 200, (url, response.status_code)
                times.append(elapsed)
                sizes.append(len(response.data))
                per_query.setdefault(json.dumps(query, ensure_ascii=False), []).append(elapsed)

    print(f"library: {tracks} tracks; {len(QUERIES)} queries x {args.rounds} rounds; index build {build_ms:.1f} ms")
    print(f"{'query':<70}{'p50 ms':>9}{'p95 ms':>9}")
    for query, values in per_query.items():
        s = summary(values)
        print(f"{query[:68]:<70}{s['p50_ms']:>9}{s['p95_ms']:>9}")
    overall = summary(times)
    print(f"{'all':<70}{overall['p50_ms']:>9}{overall['p95_ms']:>9}   max fragment {max(sizes)} bytes")
    print(json.dumps({"bench": "search", "tracks": tracks, "queries": len(QUERIES), "rounds": args.rounds,
                      **overall, "index_build_ms": round(build_ms, 1), "max_fragment_bytes": max(sizes)}))


if __name__ == "__main__":
    main()
