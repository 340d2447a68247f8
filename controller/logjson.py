"""Structured logs for the service: one JSON object per line on stdout, journald friendly.

    setup_logging("json")            # what ``sessionctl serve`` does under systemd
    log.info("room %s started", room_id, extra={"room": room_id})

Each line carries ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and ``msg``; values passed in
``extra`` become fields. journald stores the line as MESSAGE and adds its own metadata, and
``journalctl -o cat | jq`` reads it back. What goes in is only what the code logs: room ids,
driver names and opaque session tokens, never patient data (DESIGN.md §1.8).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(fmt: Literal["json", "text", "auto"] = "auto", *, verbose: bool = False) -> None:
    """Send every log line to stdout; ``auto`` is JSON unless stdout is a terminal."""
    if fmt == "auto":
        fmt = "text" if sys.stdout.isatty() else "json"
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Per-request lines would drown the room's own log; errors still come through.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
