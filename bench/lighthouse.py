"""Lighthouse: mobile performance and accessibility of the fan's pages.

Runs the real server (gunicorn with gunicorn.conf.py, as bench/weight.py
does) on a fresh demo database and points Lighthouse (pinned in
bench/lighthouse-cli/package.json, installed there with `npm ci` on first
use; `make test` never needs it) at:

- home:   /                        (the events list)
- event:  /e/<live event>          (the demo's live night)
- search: /e/<live event>?q=love   (the same page with results for "love")

Lighthouse's default mobile preset (a Moto G Power sized screen, simulated
slow 4G and 4x CPU slowdown) with the performance and accessibility
categories, in Debian's headless Chromium (CHROME_PATH, --no-sandbox). Each
run starts from an empty cache and storage, like a first visit. On a small
machine the performance score moves from run to run, so each page runs
`--runs` times (3) and the median run (by performance score) is reported with
its key metrics: FCP, LCP, TBT, CLS, Speed Index. Each run's CPU benchmark
index (Lighthouse's measure of the machine's speed at that moment) is shown
beside its score: a low score with a low index is the machine being busy.
Target (issue 12): performance >= 95 and accessibility 100 on each page.

    python bench/lighthouse.py [--runs 3] [--keep DIR]

`--keep DIR` writes each run's Lighthouse JSON report there (failed audits
are listed below the table either way).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from _support import demo_server

HERE = Path(__file__).resolve().parent
CLI_DIR = HERE / "lighthouse-cli"
LIGHTHOUSE = CLI_DIR / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
METRICS = [("FCP", "first-contentful-paint", "s"), ("LCP", "largest-contentful-paint", "s"),
           ("TBT", "total-blocking-time", "ms"), ("CLS", "cumulative-layout-shift", ""),
           ("SI", "speed-index", "s")]
TARGETS = {"performance": 95, "accessibility": 100}


def ensure_lighthouse() -> None:
    if not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLI_DIR, check=True)


def run_lighthouse(url: str, out: Path) -> dict:
    subprocess.run(
        [str(LIGHTHOUSE), url, "--only-categories=performance,accessibility", "--output=json",
         f"--output-path={out}", "--quiet", "--max-wait-for-load=60000",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"],
        env={**os.environ, "CHROME_PATH": CHROMIUM}, check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


def scores(report: dict) -> dict:
    cats, audits = report["categories"], report["audits"]
    row = {name: round(cats[name]["score"] * 100) for name in TARGETS}
    row["benchmark_index"] = round(report["environment"]["benchmarkIndex"])  # this machine's speed then
    for label, audit, _unit in METRICS:
        row[label] = audits[audit]["numericValue"]
    row["failing"] = sorted(
        f"{cat}: {audit_id}" for cat in TARGETS for ref in cats[cat]["auditRefs"]
        if ref["weight"] > 0 and (audit_id := ref["id"]) in audits
        and audits[audit_id]["score"] is not None and audits[audit_id]["score"] < (0.9 if cat == "performance" else 1)
    )
    return row


def fmt(label: str, value: float) -> str:
    unit = next(u for name, _a, u in METRICS if name == label)
    if unit == "s":
        return f"{value / 1000:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write each run's Lighthouse JSON report here")
    args = parser.parse_args()
    ensure_lighthouse()
    reports_dir = args.keep or Path(tempfile.mkdtemp())
    reports_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with demo_server() as (port, event_id):
        base = f"http://127.0.0.1:{port}"
        pages = {"home": f"{base}/", "event": f"{base}/e/{quote(event_id)}",
                 "search": f"{base}/e/{quote(event_id)}?q=love"}
        try:
            for name, url in pages.items():
                runs = []
                for i in range(args.runs):
                    runs.append(scores(run_lighthouse(url, reports_dir / f"{name}-{i + 1}.json")))
                    print(f"  {name} run {i + 1}: performance {runs[-1]['performance']}, "
                          f"accessibility {runs[-1]['accessibility']}", file=sys.stderr)
                ordered = sorted(runs, key=lambda r: r["performance"])
                median = ordered[len(ordered) // 2]
                results[name] = {**median, "url": url.removeprefix(base),
                                 "performance_runs": [r["performance"] for r in runs],
                                 "benchmark_index_runs": [r["benchmark_index"] for r in runs],
                                 "accessibility_runs": [r["accessibility"] for r in runs],
                                 "performance_median": statistics.median(r["performance"] for r in runs)}
        finally:
            if not args.keep:
                shutil.rmtree(reports_dir, ignore_errors=True)

    print(f"\nLighthouse {subprocess.run([str(LIGHTHOUSE), '--version'], capture_output=True, text=True).stdout.strip()}"
          f", mobile preset, median of {args.runs} runs (by performance)")
    header = (f"{'page':<8} {'perf':>5} {'a11y':>5}  " + "  ".join(f"{label:>8}" for label, _a, _u in METRICS)
              + "  runs: perf (CPU benchmark index)")
    print(header)
    for name, row in results.items():
        print(f"{name:<8} {row['performance']:>5} {row['accessibility']:>5}  "
              + "  ".join(f"{fmt(label, row[label]):>8}" for label, _a, _u in METRICS)
              + "  " + ", ".join(f"{p} ({b})" for p, b in zip(row["performance_runs"], row["benchmark_index_runs"])))
    for name, row in results.items():
        if row["failing"]:
            print(f"  {name} ({row['url']}) audits below par: {', '.join(row['failing'])}")
    met = all(row[cat] >= target for row in results.values() for cat, target in TARGETS.items())
    print(f"targets (performance >= 95, accessibility 100): {'met' if met else 'NOT met'}")
    print(json.dumps({name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
                      for name, row in results.items()}))


if __name__ == "__main__":
    main()
