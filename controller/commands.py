"""The one command vocabulary shared by the tablet, MQTT and the CLI (DESIGN.md §1.4).

Every adapter turns its input into a :class:`Command` with :func:`parse_command` and hands it
to ``Room.submit``. Bad input raises :class:`CommandError` with a reason fit to send back:

    >>> parse_command("extend", {"cmd_id": "a1", "actor": "nurse-3", "seconds": 300}).args
    {'seconds': 300.0}
    >>> parse_command("extend", {"cmd_id": "a1", "actor": "n", "seconds": -1})
    Traceback (most recent call last):
    ...
    controller.commands.CommandError: extend: seconds must be greater than 0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Verb = Literal[
    "start",
    "pause",
    "resume",
    "skip",
    "extend",
    "stop",
    "panic",
    "release",
    "overlay",
    "ack",
    "respond",
]
VERBS: tuple[str, ...] = get_args(Verb)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_EXTEND = 4 * 3600.0
# Why a session was ended before its minimum duration. Codes, not free text: a typed note could
# carry patient data into the journal and the audit export (DESIGN.md §1.8).
STOP_REASONS = {
    "clinical-decision": "Clinical decision",
    "patient-request": "Patient request",
    "adverse-event": "Adverse event",
    "transfer": "Transfer to other care",
    "equipment-fault": "Equipment fault",
    "other": "Other (see clinical record)",
}


class CommandError(ValueError):
    """A command that cannot be accepted as written; ``str()`` is the reason."""


@dataclass(frozen=True)
class Command:
    """One staff or system action. ``cmd_id`` makes it idempotent; ``actor`` says who."""

    verb: Verb
    cmd_id: str
    actor: str
    args: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "cmd_id": self.cmd_id, "actor": self.actor, **self.args}


@dataclass(frozen=True)
class Outcome:
    """What became of a command; a repeated ``cmd_id`` gets the first outcome back."""

    cmd_id: str
    verb: str
    accepted: bool
    reason: str | None = None
    duplicate: bool = False
    session: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cmd_id": self.cmd_id,
            "verb": self.verb,
            "accepted": self.accepted,
            "reason": self.reason,
            "duplicate": self.duplicate,
            "session": self.session,
        }


_ALLOWED: dict[str, set[str]] = {
    "start": {"scene"},
    "pause": set(),
    "resume": set(),
    "skip": {"phase"},
    "extend": {"seconds"},
    "stop": {"override", "reason"},
    "panic": set(),
    "release": set(),
    "overlay": {"name", "on"},
    "ack": {"checkin"},
    "respond": {"checkin", "option"},
}
_REQUIRED: dict[str, set[str]] = {
    "start": {"scene"},
    "extend": {"seconds"},
    "overlay": {"name", "on"},
    "ack": {"checkin"},
    "respond": {"checkin", "option"},
}


def parse_command(verb: str, body: Any) -> Command:
    """Check and normalise one command from untrusted input (JSON already decoded)."""
    if verb not in VERBS:
        raise CommandError(f"unknown command {verb!r}; known: {', '.join(VERBS)}")
    if not isinstance(body, dict):
        raise CommandError(f"{verb}: the body must be a JSON object")
    cmd_id = body.get("cmd_id")
    actor = body.get("actor")
    if not isinstance(cmd_id, str) or not _ID.match(cmd_id):
        raise CommandError(f"{verb}: cmd_id must be 1-64 letters, digits or ._:@-")
    if not isinstance(actor, str) or not _ID.match(actor):
        raise CommandError(f"{verb}: actor must be 1-64 letters, digits or ._:@-")
    rest = {k: v for k, v in body.items() if k not in ("cmd_id", "actor", "verb")}
    unknown = sorted(set(rest) - _ALLOWED[verb])
    if unknown:
        raise CommandError(f"{verb}: unexpected field(s) {', '.join(unknown)}")
    missing = sorted(_REQUIRED.get(verb, set()) - set(rest))
    if missing:
        raise CommandError(f"{verb}: missing field(s) {', '.join(missing)}")
    args = _check_args(verb, rest)
    return Command(verb=verb, cmd_id=cmd_id, actor=actor, args=args)  # type: ignore[arg-type]


def _name(verb: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise CommandError(f"{verb}: {key} must be a name of lowercase letters, digits, - or _")
    return value


def _check_args(verb: str, raw: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if verb == "start":
        args["scene"] = _name(verb, "scene", raw["scene"])
    elif verb == "skip" and raw.get("phase") is not None:
        args["phase"] = _name(verb, "phase", raw["phase"])
    elif verb == "extend":
        seconds = raw["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise CommandError(f"{verb}: seconds must be a number")
        if not seconds > 0:
            raise CommandError(f"{verb}: seconds must be greater than 0")
        if seconds > MAX_EXTEND:
            raise CommandError(f"{verb}: seconds must be at most {int(MAX_EXTEND)}")
        args["seconds"] = float(seconds)
    elif verb == "stop":
        override = raw.get("override", False)
        if not isinstance(override, bool):
            raise CommandError(f"{verb}: override must be true or false")
        reason = raw.get("reason")
        if reason is not None and reason not in STOP_REASONS:
            raise CommandError(f"{verb}: reason must be one of {', '.join(STOP_REASONS)}")
        args["override"] = override
        if reason:
            args["reason"] = reason
    elif verb == "overlay":
        args["name"] = _name(verb, "name", raw["name"])
        if not isinstance(raw["on"], bool):
            raise CommandError(f"{verb}: on must be true or false")
        args["on"] = raw["on"]
    elif verb in ("ack", "respond"):
        args["checkin"] = _name(verb, "checkin", raw["checkin"])
        if verb == "respond":
            args["option"] = _name(verb, "option", raw["option"])
    return args
