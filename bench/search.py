"""Library search speed and quality: p50/p95 server time of every query shape
(search + filter + sort + page requests) over a 10,000+ track library, the
size of the results fragment, the index's build time and memory, and the
ranking test set's hit@1 / hit@5 (tests/search_testset.py) on the same library.

The library is the demo DJ's real tracks (the 5,130-row Spotify export,
merged by artist and title) plus generated ones made from the same words.
Each query is an htmx request for the results fragment through the whole
Flask stack (routing, parsing, search, rendering), in-process.

    python bench/search.py [--tracks 10000] [--rounds 20] [--check]

Targets (issue 17): p95 <= 5 ms per shape at 10,000 tracks, <= 10 ms at 50,000;
--check exits 1 when a shape misses its target. A 50,000-track library is
above the import limit (20,000), so the bench raises that limit for itself.
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
    # Added for issue 17: the whole library in each order, deep pages, typing.
    {"q": ""}, {"q": "", "page": 200}, {"q": "", "sort": "az", "page": 450}, {"q": "", "sort": "price", "page": 300},
    {"q": "", "sort": "price_desc", "page": 1000}, {"q": "", "genre": "pop", "sort": "az", "page": 40},
    {"q": "the", "sort": "price", "page": 5}, {"q": "lo"}, {"q": "a"}, {"q": "beter now post malne"},
    {"q": "love", "page": 30}, {"q": "remix feat", "sort": "az"},
]


def grow_library(app, target: int) -> int:
    """Add generated tracks (words of real titles and artists) until the library has `target`."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import DJProfile, Track
    from app.services.library import TrackRow, merge_tracks

    from app.services.library import merge

    merge.LIBRARY_MAX_TRACKS = max(merge.LIBRARY_MAX_TRACKS, target)  # the bench may go past the import limit
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
    parser.add_argument("--check", action="store_true", help="exit 1 when a shape's p95 misses the target")
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
        with app.app_context():
            index_mib, hit1, hit5, cases = index_figures(event_id)
        for url in urls:  # warm-up
            client.get(url, headers=headers)

        times, sizes, per_query, cpu_per_query = [], [], {}, {}
        for _ in range(args.rounds):
            for url, query in zip(urls, QUERIES):
                t0, c0 = time.perf_counter(), time.thread_time()
                response = client.get(url, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                cpu_per_query.setdefault(json.dumps(query, ensure_ascii=False), []).append(
                    (time.thread_time() - c0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                times.append(elapsed)
                sizes.append(len(response.data))
                per_query.setdefault(json.dumps(query, ensure_ascii=False), []).append(elapsed)

    target = 5.0 if tracks <= 10_000 else 10.0
    per_10k = 10_000 / tracks
    print(f"library: {tracks} tracks; {len(QUERIES)} query shapes x {args.rounds} rounds; index build {build_ms:.1f} ms "
          f"({build_ms * per_10k:.1f} ms and {index_mib * per_10k:.1f} MiB per 10,000 tracks; {index_mib:.1f} MiB)")
    print(f"ranking test set: {cases} misspelled queries, hit@1 {hit1:.1%}, hit@5 {hit5:.1%} (targets 97%, 100%)")
    # Wall time is the target; CPU time (this thread's) shows the server's own work when
    # other processes share the machine's cores.
    print(f"{'query':<70}{'p50 ms':>9}{'p95 ms':>9}{'cpu p95':>9}")
    worst = worst_cpu = 0.0
    for query, values in per_query.items():
        s = summary(values)
        cpu = summary(cpu_per_query[query])["p95_ms"]
        worst, worst_cpu = max(worst, s["p95_ms"]), max(worst_cpu, cpu)
        flag = "" if s["p95_ms"] <= target else f"  over {target} ms"
        print(f"{query[:68]:<70}{s['p50_ms']:>9}{s['p95_ms']:>9}{cpu:>9}{flag}")
    overall = summary(times)
    print(f"{'all':<70}{overall['p50_ms']:>9}{overall['p95_ms']:>9}   max fragment {max(sizes)} bytes; "
          f"worst shape p95 {worst} ms (target {target} ms), cpu {worst_cpu} ms")
    print(json.dumps({"bench": "search", "tracks": tracks, "queries": len(QUERIES), "rounds": args.rounds,
                      **overall, "worst_shape_p95_ms": worst, "worst_shape_cpu_p95_ms": worst_cpu, "index_build_ms": round(build_ms, 1),
                      "index_mib": round(index_mib, 2), "max_fragment_bytes": max(sizes),
                      "hit_at_1": round(hit1, 4), "hit_at_5": round(hit5, 4), "ranking_cases": cases}))
    if args.check and worst > target:
        raise SystemExit(1)


def index_figures(event_public_id: str) -> tuple[float, float, float, int]:
    """(MiB the index takes, hit@1, hit@5, cases) for the bench library's index."""
    import tracemalloc

    from sqlalchemy import select

    from app.extensions import db
    from app.models import Event, Track
    from app.services.library.search import LibraryIndex, SearchParams, search
    from tests.search_testset import build_queries, hit_rates

    event = db.session.scalar(select(Event).where(Event.public_id == event_public_id))
    rows = db.session.execute(
        select(Track.id, Track.public_id, Track.title, Track.artist, Track.genre, Track.bpm, Track.duration_s,
               Track.popularity, Track.price_override_cents, Track.title_key, Track.artist_key)
        .where(Track.dj_id == event.dj_id, Track.requestable.is_(True))).all()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = LibraryIndex.build(0, rows)
    index.prices(2000)
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    cases = build_queries()
    hit1, hit5, _ = hit_rates(index, cases, search, SearchParams)
    return size / (1024 * 1024), hit1, hit5, len(cases)


if __name__ == "__main__":
    main()
