"""Journal: accepted-command latency including the fsync, appends per second, and how long
the event loop stalls meanwhile, against a bare SQLite insert loop with the same pragmas (WAL,
synchronous=FULL, BEGIN IMMEDIATE).

    .venv/bin/python bench/journal.py [--n 2000] [--dir /var/lib/sessionctl]

- ``bare insert``: one small row per transaction, nothing else; the floor for this disk.
- ``record (sync)``: the old path, ``journal.record`` called on the event loop: one command
  row, its events and the room's session snapshot (JSON) in one fsync'd transaction; measured
  per call with a real running Session (extend commands, which are accepted every time).
- ``record_async``: what ``Room.submit`` awaits now before any driver is told: the same
  transaction on the journal's writer thread.

Both journal runs go on an asyncio loop beside a ticker task that wakes every millisecond; its
worst lateness is the loop stall every other room, the web server and MQTT would see (``idle
loop``: the same ticker with no writes, the floor). Ratios: record_async p50 / bare p50, and
the sync stall / the threaded stall. Run it on the Pi's SD card with ``--dir``: the fsync is
the cost there (testing.md §6.1); ``--commit-delay 30`` adds that many ms before every commit
to stand in for one. Prints a table and one JSON line; about ten seconds here.
"""

from __future__ import annotations

import argparse
import asyncio
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


class _Ticker:
    """How late a task that sleeps 1 ms wakes: what a blocked event loop costs the others."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            self.late.append(time.perf_counter() - due)

    async def stop(self) -> dict[str, float]:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        ordered = sorted(self.late) or [0.0]
        return {
            "stall_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "stall_max_ms": ordered[-1] * 1000,
        }


async def bench_idle(n: int) -> dict[str, float]:
    ticker = _Ticker()
    for _ in range(n):
        await asyncio.sleep(0.002)
    return await ticker.stop()


async def bench_journal(
    folder: Path, n: int, per_session: int, *, threaded: bool, delay: float
) -> dict[str, float]:
    library = SceneLibrary.load(ROOT / "scenes")
    clock = SystemClock()
    journal = Journal.open(
        folder / f"journal-{threaded}.sqlite3",
        clock=clock,
        before_commit=(lambda: time.sleep(delay)) if delay else None,
    )
    session = Session("room-1", library.scenes, roles=["ambient", "accent", "path"])
    room = _Room(session)

    async def record(command: Command, result: Any) -> None:
        if threaded:
            await journal.record_async(room, result.events, command=command, outcome=result.outcome)
        else:
            journal.record(room, result.events, command=command, outcome=result.outcome)

    samples = []
    snapshot_bytes = 0
    ticker = _Ticker()
    for i in range(n):
        if i % per_session == 0:
            # A new session every so often, as in a clinic: the snapshot carries the
            # outcomes of one session's commands, not of every command ever.
            for verb, args in (("stop", {"override": True, "reason": "bench"}), ("start", {})):
                args = {"scene": "demo"} if verb == "start" else args
                command = Command(verb, f"{verb}{i}", "bench", args)  # type: ignore[arg-type]
                await record(command, session.handle(command, clock.monotonic()))
        command = Command("extend", f"e{i}", "nurse-3", {"seconds": 1.0})
        result = session.handle(command, clock.monotonic())
        t0 = time.perf_counter()
        await record(command, result)
        samples.append(time.perf_counter() - t0)
        snapshot_bytes = max(snapshot_bytes, len(json.dumps(session.snapshot(0.0))))
        await asyncio.sleep(0.002)  # commands arrive spaced out; the ticker gets its turns
    stall = await ticker.stop()
    journal.close()
    return {**_percentiles(samples), **stall, "snapshot_bytes_max": float(snapshot_bytes)}


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
    parser.add_argument(
        "--commit-delay", type=float, default=0.0, help="ms slept before each journal commit"
    )
    args = parser.parse_args()
    delay = args.commit_delay / 1000
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        bare = bench_bare(folder, args.n)
        idle = asyncio.run(bench_idle(args.n))
        journal = asyncio.run(
            bench_journal(folder, args.n, args.per_session, threaded=False, delay=delay)
        )
        queued = asyncio.run(
            bench_journal(folder, args.n, args.per_session, threaded=True, delay=delay)
        )
    rows: list[tuple[str, dict[str, float]]] = [
        ("bare insert", bare),
        ("record (sync)", journal),
        ("record_async", queued),
    ]
    print(
        f"{'':14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'appends/s':>10}"
        f" {'stall p99':>10} {'stall max':>10}"
    )
    for name, r in rows:
        stall = (
            f" {r['stall_p99_ms']:10.3f} {r['stall_max_ms']:10.3f}" if "stall_max_ms" in r else ""
        )
        print(
            f"{name:14} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['max_ms']:8.3f}"
            f" {r['per_s']:10.0f}{stall}"
        )
    print(f"{'idle loop':14} {'':38} {idle['stall_p99_ms']:10.3f} {idle['stall_max_ms']:10.3f}")
    ratio = queued["p50_ms"] / bare["p50_ms"] if bare["p50_ms"] else float("nan")
    stall_ratio = (
        journal["stall_max_ms"] / queued["stall_max_ms"] if queued["stall_max_ms"] else float("nan")
    )
    largest = queued["snapshot_bytes_max"]
    print(f"record_async / bare (p50): {ratio:.2f}x; largest snapshot {largest:.0f} B")
    print(f"loop stall, sync / threaded (max): {stall_ratio:.1f}x")
    out: dict[str, Any] = {
        "bench": "journal",
        "n": args.n,
        "commit_delay_ms": args.commit_delay,
        "idle": {k: round(v, 4) for k, v in idle.items()},
        "journal": {k: round(v, 4) for k, v in journal.items()},
        "journal_async": {k: round(v, 4) for k, v in queued.items()},
        "bare": {k: round(v, 4) for k, v in bare.items()},
        "ratio_p50": round(ratio, 3),
        "stall_ratio_max": round(stall_ratio, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
