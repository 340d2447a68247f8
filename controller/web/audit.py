"""Room-independent audit records of the web layer: every login attempt (OWASP ASVS 16.3.1).

    audit_login("nurse-3", ok=False, reason="wrong PIN", client="10.0.0.7", device="ab12cd34")

Commands need nothing here: they go through ``Room.submit`` with the staff id as actor, and the
room's recorder (the journal) writes them. Login attempts belong to no room, so they go to the
journal's site-level audit function when ``controller.journal`` provides one (``audit_site``
or ``record_site_event``), and always to the ``sessionctl.audit`` logger. Records carry the
staff id and the device, never a PIN. The typed staff id of a failed login is whatever the
person at the keypad typed (a PIN in the wrong field, markup, control characters), so it is kept
only when it is a well-formed staff id, else as ``<invalid id>``; every field is length-capped.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from controller.web.staff import ID_PATTERN, PIN_MIN

log = logging.getLogger("sessionctl.audit")

Sink = Callable[[dict[str, Any]], None]
INVALID_ID = "<invalid id>"
_CAP = 64
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


def safe_staff_id(typed: str, *, known: bool = True) -> str:
    """``typed`` if it is a well-formed staff id (at most 64 characters), else ``<invalid id>``.

    An id that is no account (``known=False``) and looks like a PIN (digits only, PIN length)
    is most likely a PIN typed into the wrong field, so it is not kept either.

    >>> safe_staff_id("nurse-3"), safe_staff_id("<b>hi</b>"), safe_staff_id("x" * 65)
    ('nurse-3', '<invalid id>', '<invalid id>')
    >>> safe_staff_id("48291573", known=False)
    '<invalid id>'
    """
    if not ID_PATTERN.fullmatch(typed):
        return INVALID_ID
    if not known and typed.isdigit() and len(typed) >= PIN_MIN:
        return INVALID_ID
    return typed


def audit_login(
    staff: str,
    *,
    ok: bool,
    reason: str,
    client: str,
    device: str | None = None,
    room: str | None = None,
    kind: str = "login",
    known: bool = True,
) -> dict[str, Any]:
    """Record one login attempt (or logout/pairing with ``kind``); returns the record.
    ``known=False``: ``staff`` is typed text that names no account (see :func:`safe_staff_id`).
    """
    record = {
        "kind": kind,
        "wall": datetime.now(UTC).isoformat(),
        "staff": safe_staff_id(staff, known=known),
        "ok": ok,
        "reason": reason[:_CAP],
        "client": client[:_CAP],
        "device": None if device is None else device[:_CAP],
        "room": None if room is None else room[:_CAP],
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
