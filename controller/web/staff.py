"""Staff accounts: ids and PINs kept as slow salted scrypt hashes in ``<state_dir>/staff.json``.

    store = StaffStore(Path("state"))
    pin = store.add("nurse-3")            # a random 8-digit PIN, shown once
    store.verify("nurse-3", pin)          # True; slow on purpose (run it off the event loop)
    store.remove("nurse-3")

    sessionctl staff add nurse-3          # prints the new PIN
    sessionctl staff add nurse-3 --pin-stdin < pin.txt
    sessionctl staff list
    sessionctl staff remove nurse-3

The file is written atomically with mode 0600 and re-read when it changes, so a running server
sees ``staff add|remove`` at once. Hash strings carry their own scrypt parameters, so the cost can
be raised later without invalidating old PINs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STAFF_FILE = "staff.json"
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PIN_MIN, PIN_MAX = 6, 64
# 2**14 x 8 x 1 needs 16 MiB and ~40 ms on x86 (a few hundred ms on a Pi 4): slow for a
# guesser, fine for a login. OWASP's scrypt floor is N=2**17 r=8 p=1 for passwords; PINs are
# protected mainly by the online rate limit, and the Pi must stay responsive.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


class StaffError(ValueError):
    """A bad id or PIN; ``str()`` is fit to show the user."""


def check_id(staff_id: str) -> str:
    if not ID_PATTERN.fullmatch(staff_id):  # match() would let a trailing newline in
        raise StaffError("staff id must be 1-64 letters, digits or ._@- (no names needed)")
    return staff_id


def check_pin(pin: str) -> str:
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise StaffError(f"PIN must be {PIN_MIN}-{PIN_MAX} characters")
    if len(set(pin)) == 1 or pin in "01234567890" or pin in "98765432109":
        raise StaffError("PIN is too easy to guess (repeated or sequential digits)")
    return pin


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            pin.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the id is unknown, so an unknown id costs as much time as a known
    one. Made on first use: scrypt is slow on purpose, and every CLI start imports this module."""
    return hash_pin("not-a-real-pin")


@dataclass(frozen=True)
class StaffMember:
    id: str
    created: str


class StaffStore:
    """The staff file of one site; safe to share between the server and the CLI."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STAFF_FILE
        self._mtime: int | None = None
        self._data: dict[str, dict[str, Any]] = {}

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._data = None, {}
            return self._data
        if mtime != self._mtime:
            raw = json.loads(self.path.read_text())
            self._data = dict(raw.get("staff", {}))
            self._mtime = mtime
        return self._data

    def _save(self, data: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".staff-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "staff": data}, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._mtime = None

    def members(self) -> list[StaffMember]:
        return [StaffMember(k, v.get("created", "")) for k, v in sorted(self._load().items())]

    def __contains__(self, staff_id: object) -> bool:
        return isinstance(staff_id, str) and staff_id in self._load()

    def add(self, staff_id: str, pin: str | None = None, *, replace: bool = False) -> str:
        """Create (or with ``replace``, re-PIN) an account; returns the PIN."""
        check_id(staff_id)
        pin = check_pin(pin) if pin is not None else new_pin()
        data = dict(self._load())
        if staff_id in data and not replace:
            raise StaffError(f"staff {staff_id!r} exists (use --replace to set a new PIN)")
        data[staff_id] = {"hash": hash_pin(pin), "created": datetime.now(UTC).isoformat()}
        self._save(data)
        return pin

    def remove(self, staff_id: str) -> bool:
        data = dict(self._load())
        if data.pop(staff_id, None) is None:
            return False
        self._save(data)
        return True

    def verify(self, staff_id: str, pin: str) -> bool:
        """Whether the PIN is right; takes the same time for unknown ids. Blocking (~40 ms)."""
        entry = self._load().get(staff_id) if ID_PATTERN.fullmatch(staff_id) else None
        if entry is None or len(pin) > PIN_MAX:
            pin_matches(pin[:PIN_MAX], _dummy_hash())
            return False
        return pin_matches(pin, str(entry.get("hash", "")))


def new_pin() -> str:
    while True:
        pin = f"{secrets.randbelow(10**8):08d}"
        with contextlib.suppress(StaffError):
            return check_pin(pin)


# -- sessionctl staff ----------------------------------------------------------------------


def register(sub: Any) -> None:
    p = sub.add_parser("staff", help="manage staff logins for the tablet")
    p.add_argument("--config", type=Path, help="site config (default: the demo config)")
    p.add_argument("--state-dir", type=Path, help="state folder (default: from the config)")
    actions = p.add_subparsers(metavar="ACTION", required=True)
    a = actions.add_parser("add", help="add a staff login and print its PIN")
    a.add_argument("id", help="staff id, e.g. nurse-3 (no names needed)")
    a.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    a.add_argument("--replace", action="store_true", help="set a new PIN for an existing id")
    a.set_defaults(handler=_cmd_add)
    r = actions.add_parser("remove", help="remove a staff login")
    r.add_argument("id")
    r.set_defaults(handler=_cmd_remove)
    s = actions.add_parser("list", help="list staff ids")
    s.set_defaults(handler=_cmd_list)


def _store(args: argparse.Namespace) -> StaffStore:
    if args.state_dir is not None:
        return StaffStore(args.state_dir)
    from controller.config import load_config
    from controller.resources import default_config

    return StaffStore(load_config(args.config or default_config()).site.state_dir)


def _cmd_add(args: argparse.Namespace) -> int:
    pin = sys.stdin.readline().strip() if args.pin_stdin else None
    try:
        made = _store(args).add(args.id, pin, replace=args.replace)
    except StaffError as exc:
        print(f"sessionctl staff: {exc}", file=sys.stderr)
        return 1
    if pin is None:
        print(f"{args.id} PIN: {made}")
    else:
        print(f"{args.id} saved")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    if not _store(args).remove(args.id):
        print(f"sessionctl staff: no staff {args.id!r}", file=sys.stderr)
        return 1
    print(f"{args.id} removed")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for member in _store(args).members():
        print(f"{member.id}\t{member.created}")
    return 0
