"""Room-independent audit records of the web layer: every login attempt (OWASP ASVS 16.3.1).

    audit_login("nurse-3", ok=False, reason="wrong PIN", client="10.0.0.7", device="ab12cd34")

Commands need nothing here: they go through ``Room.submit`` with the staff id as actor, and the
room's recorder (the journal) writes them. Login attempts belong to no room, so they go to the
journal's site-level audit function when ``controller.journal`` provides one (``audit_site``
or ``record_site_event``), and always to the ``sessionctl.audit`` logger. Records carry the
staff id and the device, never a PIN.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("sessionctl.audit")

Sink = Callable[[dict[str, Any]], None]
_sinks: list[Sink] = []


def add_sink(sink: Sink) -> Callable[[], None]:
    """Also send every login record to ``sink`` (tests, the journal); returns a remover."""
    _sinks.append(sink)
    return lambda: _sinks.remove(sink) if sink in _sinks else None


def _journal_hook() -> Callable[..., Any] | None:
    try:
        journal = importlib.import_module("controller.journal")
    except ModuleNotFoundError:
        return None
    for name in ("audit_site", "record_site_event"):
        hook = getattr(journal, name, None)
        if callable(hook):
            return hook  # type: ignore[no-any-return]
    return None


def audit_login(
    staff: str,
    *,
    ok: bool,
    reason: str,
    client: str,
    device: str | None = None,
    room: str | None = None,
    kind: str = "login",
) -> dict[str, Any]:
    """Record one login attempt (or logout/pairing with ``kind``); returns the record."""
    record = {
        "kind": kind,
        "wall": datetime.now(UTC).isoformat(),
        "staff": staff[:64],
        "ok": ok,
        "reason": reason,
        "client": client,
        "device": device,
        "room": room,
    }
    log.info(
        "%s staff=%s ok=%s reason=%s client=%s device=%s room=%s",
        kind,
        record["staff"],
        ok,
        reason,
        client,
        device,
        room,
    )
    hook = _journal_hook()
    if hook is not None:
        try:
            hook(record)
        except Exception:  # the login answer must not depend on the audit store
            log.exception("journal rejected a %s audit record", kind)
    for sink in list(_sinks):
        sink(record)
    return record
