"""`python -m bench [suite ...]`: run benchmark suites and print their figures.

Every suite is a module with NAME, DESCRIPTION and `run(backend, opts, log) -> dict`
(keys: results, a list of harness.ScenarioResult dicts; targets, a list of
{scenario, met, detail}); add a new one to SUITES. Figures are also saved as JSON under
bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

SUITES = {
    "catalog": "bench.catalog",
    "checkout": "bench.checkout",
    "abandoned_carts": "bench.abandoned_carts",
    "flash_sale": "bench.flash_sale",
    "paid_message": "bench.paid_message",
    "live": "bench.live",
    "guides": "bench.guides",
    "points_expiry": "bench.points_expiry",
    "members": "bench.members",
    "points_checkout": "bench.points_checkout",
}
BACKENDS = {"sqlite": ["sqlite"], "postgres": ["postgres"], "both": ["sqlite", "postgres"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("suites", nargs="*", metavar="suite", help=f"suites to run (default all: {', '.join(SUITES)})")
    p.add_argument("--backend", choices=list(BACKENDS), default="both", help="database backend(s) (default both)")
    p.add_argument("--products", type=int, default=100_000, help="catalog size (default 100000)")
    p.add_argument("--carts", type=int, default=1_000_000, help="abandoned_carts: carts (default 1000000)")
    p.add_argument("--lots", type=int, default=1_000_000, help="points_expiry: due lots (default 1000000)")
    p.add_argument("--members", type=int, default=1_000_000, help="members: shoppers (default 1000000)")
    p.add_argument("--orders", type=int, default=5_000_000, help="members: paid orders (default 5000000)")
    p.add_argument("--keep-database", metavar="NAME",
                   help="members: seed this PostgreSQL database once and keep it; later runs reuse the seed")  # fmt: skip
    p.add_argument("--repeats", type=int, default=50, help="abandoned_carts: timed runs per query (default 50)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    p.add_argument("--rounds", type=int, default=3,
                   help="guides: alternating rounds of the checkout loop with and without a guide (default 3)")  # fmt: skip
    p.add_argument("--entries", type=int, default=1_000_000,
                   help="guides: entries settled per settlement round (default 1000000; 0 skips it)")  # fmt: skip
    p.add_argument("--entries-per-sub-order", type=int, default=2,
                   help="guides: entries per due sub-order in the settlement scenario (default 2)")  # fmt: skip
    p.add_argument("--summary-days", type=int, default=90,
                   help="guides: days the summary guide's history spans (default 90: ~1,100 orders a day)")  # fmt: skip
    p.add_argument("--settle-limit", type=float, default=0.0,
                   help="guides: stop a settlement round's sweep after this many seconds (default 0: until done)")  # fmt: skip
    p.add_argument("--summary-entries", type=int, default=100_000,
                   help="guides: entries in the summary guide's history (default 100000; 0 skips the summary)")  # fmt: skip
    p.add_argument("--profile", action="store_true",
                   help="guides: cProfile the settlement sweep and 100 summaries (in this process); print the top")  # fmt: skip
    p.add_argument("--scenario", action="append", dest="scenarios", help="run only this scenario (repeatable)")
    # gthread, 3 workers x 3 threads: what gunicorn.conf.py runs on this 2-core machine (see its notes).
    p.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    p.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread)")
    p.add_argument("--threads", type=int, default=3, help="threads per gthread worker (default 3)")
    p.add_argument("--rq-worker-class", default="workers.worker.Worker",
                   help="paid_message: the RQ worker class (default workers.worker.Worker; rq.Worker to compare)")  # fmt: skip
    p.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                   "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="PostgreSQL URL allowed to CREATE/DROP DATABASE (127.0.0.1 only)")  # fmt: skip
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="before each measurement, wait up to this many seconds for other work on the machine "
                        "to finish (default 60; 0 to measure at once)")  # fmt: skip
    p.add_argument("--time-limit", type=float, default=30.0, help="abort the whole run after this many minutes")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    opts = p.parse_args(argv)
    unknown = [s for s in opts.suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    opts.suites = opts.suites or list(SUITES)
    return opts


def _abort(signum, _frame):
    # SystemExit unwinds through every `with`: gunicorn stopped, databases dropped.
    raise SystemExit(f"bench: stopped by {signal.Signals(signum).name}")


def _machine() -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "git": rev}


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(int(opts.time_limit * 60))
    machine = _machine()
    print(f"bench: {', '.join(opts.suites)} on {' and '.join(BACKENDS[opts.backend])}; {machine['cpus']} CPUs, "
          f"Python {machine['python']}, commit {machine['git'] or '?'}", flush=True)  # fmt: skip
    reports = []
    try:
        for name in opts.suites:
            suite = importlib.import_module(SUITES[name])
            for backend in BACKENDS[opts.backend]:
                print(f"\n== {name} on {backend}: {suite.DESCRIPTION}", flush=True)
                report = suite.run(backend, opts, log=lambda line: print(line, flush=True))
                reports.append(report)
                _print_report(report)
    finally:
        signal.alarm(0)
    if reports:
        _summary(reports)
        if not opts.no_save:
            print(f"\nsaved {_save(reports, opts, machine).relative_to(ROOT)}")
    return 0


def _print_report(report: dict) -> None:
    results = [harness.ScenarioResult(**r) for r in report["results"]]
    size = f"{report['products']:,} products, " if "products" in report else ""
    seconds = f", {results[0].duration_s:.0f} s per scenario" if results else ""
    where = f"{report['suite']} on {report['backend']}"
    print(f"\n{where}: {size}{report['server']}, {report['concurrency']} clients{seconds}")
    print(harness.format_table(results), flush=True)


def _summary(reports: list[dict]) -> None:
    busy = max((r.get("cpu_other_pct", 0) for report in reports for r in report.get("results", [])), default=0)
    if busy > 20:
        print(f"\nnote: other processes used up to {busy:.0f}% of a core during these measurements (the last "
              "column); the figures understate what this machine does when it only runs the benchmark")  # fmt: skip
    checks = [(r, t) for r in reports for t in r.get("targets", [])]
    if not checks:
        return
    print()
    for report, target in checks:
        verdict = "MET" if target["met"] else "NOT MET"
        print(f"target {report['suite']}/{target['scenario']} on {report['backend']}: {verdict} - {target['detail']}")


def _save(reports: list[dict], opts, machine: dict) -> Path:
    harness.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = harness.RESULTS_DIR / f"{'+'.join(opts.suites)}-{stamp}.json"
    options = {k: v for k, v in vars(opts).items() if k not in ("pg_admin_url",)}
    path.write_text(json.dumps({"machine": machine, "options": options, "reports": reports}, indent=2) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
