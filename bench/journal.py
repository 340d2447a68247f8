"""Journal: accepted-command latency including the fsync, and appends per second, against a
bare SQLite insert loop with the same pragmas (WAL, synchronous=FULL, BEGIN IMMEDIATE).

    .venv/bin/python bench/journal.py [--n 2000] [--dir /var/lib/sessionctl]

- ``journal.record``: what ``Room.submit`` waits for before any driver is told: one command
  row, its events and the room's session snapshot (JSON) in one fsync'd transaction; measured
  per call with a real running Session (extend commands, which are accepted every time).
- ``bare insert``: one small row per transaction, nothing else; the floor for this disk.

The ratio is journal p50 / bare p50. Run it on the Pi's SD card with ``--dir``: the fsync is
the cost there (testing.md §6.1). Prints a table and one JSON line; a few seconds here.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.clock import SystemClock  # noqa: E402
from controller.commands import Command  # noqa: E402
from controller.journal import Journal  # noqa: E402
from controller.scene import SceneLibrary  # noqa: E402
from controller.session import Session  # noqa: E402


class _Room:
    def __init__(self, session: Session) -> None:
        self.id = "room-1"
        self.session = session


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    total = sum(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "per_s": len(samples) / total if total else 0.0,
    }


def bench_journal(folder: Path, n: int, per_session: int) -> dict[str, float]:
    library = SceneLibrary.load(ROOT / "scenes")
    clock = SystemClock()
    journal = Journal.open(folder / "journal.sqlite3", clock=clock)
    session = Session("room-1", library.scenes, roles=["ambient", "accent", "path"])
    room = _Room(session)
    samples = []
    snapshot_bytes = 0
    for i in range(n):
        if i % per_session == 0:
            # A new session every so often, as in a clinic: the snapshot carries the
            # outcomes of one session's commands, not of every command ever.
            for verb, args in (("stop", {"override": True, "reason": "bench"}), ("start", {})):
                args = {"scene": "demo"} if verb == "start" else args
                command = Command(verb, f"{verb}{i}", "bench", args)  # type: ignore[arg-type]
                result = session.handle(command, clock.monotonic())
                journal.record(room, result.events, command=command, outcome=result.outcome)
        command = Command("extend", f"e{i}", "nurse-3", {"seconds": 1.0})
        result = session.handle(command, clock.monotonic())
        t0 = time.perf_counter()
        journal.record(room, result.events, command=command, outcome=result.outcome)
        samples.append(time.perf_counter() - t0)
        snapshot_bytes = max(snapshot_bytes, len(json.dumps(session.snapshot(0.0))))
    journal.close()
    return {**_percentiles(samples), "snapshot_bytes_max": float(snapshot_bytes)}


def bench_bare(folder: Path, n: int) -> dict[str, float]:
    db = sqlite3.connect(folder / "bare.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, kind TEXT, payload TEXT)")
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (kind, payload) VALUES (?, ?)", ("extend", f'{{"i":{i}}}'))
        db.execute("COMMIT")
        samples.append(time.perf_counter() - t0)
    db.close()
    return _percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="appends per measurement")
    parser.add_argument("--per-session", type=int, default=50, help="commands per session")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        bare = bench_bare(folder, args.n)
        journal = bench_journal(folder, args.n, args.per_session)
    rows: list[tuple[str, dict[str, float]]] = [("bare insert", bare), ("journal.record", journal)]
    print(f"{'':16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'appends/s':>10}")
    for name, r in rows:
        print(
            f"{name:16} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['max_ms']:8.3f} {r['per_s']:10.0f}"
        )
    ratio = journal["p50_ms"] / bare["p50_ms"] if bare["p50_ms"] else float("nan")
    largest = journal["snapshot_bytes_max"]
    print(f"journal / bare (p50): {ratio:.2f}x; largest snapshot {largest:.0f} B")
    out: dict[str, Any] = {
        "bench": "journal",
        "n": args.n,
        "journal": {k: round(v, 4) for k, v in journal.items()},
        "bare": {k: round(v, 4) for k, v in bare.items()},
        "ratio_p50": round(ratio, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
