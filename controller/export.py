"""``sessionctl export``: the audit trail out of the journal, as CSV or JSON.

    sessionctl export --config /etc/sessionctl/room.yaml --room room-1 --since 2026-03-01
    sessionctl export --format json -o audit.json

Every command (accepted or refused, with its reason), prompt, acknowledgement, escalation,
panic, driver fault, resume and clock step, with the actor and the UTC time. It reads the
journal without writing to it, so it is safe while ``serve`` runs. There is no patient data in
the journal to export (DESIGN.md §1.8).
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from controller.config import load_config
from controller.journal import query_rows
from controller.resources import default_config

COLUMNS = ("seq", "time", "room", "session", "kind", "actor", "cmd_id", "offset", "detail")


def register(subparsers: Any) -> None:

    p = subparsers.add_parser("export", help="write the audit trail (CSV or JSON)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="site config (default: $SESSIONCTL_CONFIG, /etc/sessionctl/room.yaml, or the demo)",
    )
    p.add_argument(
        "--room", help="only this room's rows (site-wide rows such as logins need no --room)"
    )
    p.add_argument("--since", type=parse_since, help="from this UTC date or time on")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    p.set_defaults(handler=cmd_export)


def parse_since(text: str) -> datetime:
    """``2026-03-01`` or ``2026-03-01T08:00`` (UTC unless an offset is given)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date (2026-03-01) or time (2026-03-01T08:00)"
            ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def cmd_export(args: argparse.Namespace) -> int:
    config = load_config(args.config or default_config())
    path = config.site.journal.path
    if not path.exists():
        print(f"sessionctl export: no journal at {path}", file=sys.stderr)
        return 1
    try:
        rows = read_rows(path, room=args.room, since=args.since)
    except sqlite3.Error as exc:
        print(f"sessionctl export: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if args.output is not None:
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            write(rows, out, args.format)
        print(f"{len(rows)} audit rows written to {args.output}", file=sys.stderr)
    else:
        write(rows, sys.stdout, args.format)
    return 0


def read_rows(
    path: Path, *, room: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Read without writing: read-only, or immutable when the WAL's shared-memory file cannot
    be made (the service is stopped and the folder is read-only to us)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return list(query_rows(db, room=room, since=since))
        finally:
            db.close()
    except sqlite3.OperationalError:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return list(query_rows(db, room=room, since=since))
        finally:
            db.close()


def write(rows: Iterable[dict[str, Any]], out: TextIO, fmt: str) -> None:
    if fmt == "json":
        json.dump([{k: r[k] for k in COLUMNS} for r in rows], out, indent=1)
        out.write("\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        detail = json.dumps(r["detail"], separators=(",", ":"), sort_keys=True)
        writer.writerow([*(r[k] if r[k] is not None else "" for k in COLUMNS[:-1]), detail])
