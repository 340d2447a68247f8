"""Staff sessions, tablet pairings and login throttling: the server-side half of the login.

    sessions = Sessions(idle=1800, absolute=43200)
    token = sessions.create("nurse-3", now)        # a fresh 256-bit token at every login
    sessions.get(token, now)                       # StaffSession, or None once expired
    sessions.drop(token)                           # logout: invalid server-side at once

    devices = Devices(state_dir, lifetime=365 * 86400)
    token = devices.pair("room-1", by="nurse-3")   # the tablet keeps this in an HttpOnly cookie
    devices.room_of(token)                         # "room-1"

    throttle = Throttle()
    throttle.wait_for(["dev:10.0.0.7|-", "acct:nurse-3"], now)   # 0.0, or seconds to wait

Throttling is exponential back-off capped at 60 s and forgets failures after a quiet spell, so
a patient guessing PINs slows guessing to about one a minute but can never lock staff out
for good; a paired tablet ignores the account-wide delay other devices caused (OWASP ASVS 6.1.1,
testing.md §8.2).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEVICES_FILE = "devices.json"
log = logging.getLogger("sessionctl.web.auth")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_key(token: str) -> str:
    """The server-side key of a token: its hash, so stored keys cannot be replayed."""
    return _digest(token)


def _digest(token: str) -> str:
    # Tokens have 256 bits of entropy, so a plain hash is enough to keep them out of the file.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class StaffSession:
    staff: str
    created: float
    last_seen: float
    device: str | None = None
    closers: list[Any] = field(default_factory=list)

    def expires_at(self, idle: float, absolute: float) -> float:
        return min(self.last_seen + idle, self.created + absolute)


class Sessions:
    """Logged-in staff by token; kept in memory, so a restart logs everyone out."""

    def __init__(self, *, idle: float, absolute: float) -> None:
        self.idle = idle
        self.absolute = absolute
        self._by_token: dict[str, StaffSession] = {}

    def create(self, staff: str, now: float, *, device: str | None = None) -> str:
        self._sweep(now)
        token = new_token()
        self._by_token[_digest(token)] = StaffSession(staff, now, now, device)
        return token

    def get(self, token: str | None, now: float, *, touch: bool = False) -> StaffSession | None:
        if not token:
            return None
        key = _digest(token)
        session = self._by_token.get(key)
        if session is None:
            return None
        if now >= session.expires_at(self.idle, self.absolute):
            self._by_token.pop(key, None)
            return None
        if touch:
            session.last_seen = now
        return session

    def expires_in(self, session: StaffSession, now: float) -> float:
        return max(0.0, session.expires_at(self.idle, self.absolute) - now)

    def drop(self, token: str | None) -> StaffSession | None:
        return None if not token else self._by_token.pop(_digest(token), None)

    def drop_staff(self, staff: str) -> int:
        keys = [k for k, s in self._by_token.items() if s.staff == staff]
        for key in keys:
            del self._by_token[key]
        return len(keys)

    def _sweep(self, now: float) -> None:
        dead = [
            k for k, s in self._by_token.items() if now >= s.expires_at(self.idle, self.absolute)
        ]
        for key in dead:
            del self._by_token[key]

    def __len__(self) -> int:
        return len(self._by_token)


class Devices:
    """Tablets paired to one room, by token digest; kept in ``devices.json`` (mode 0600)."""

    def __init__(self, state_dir: Path, *, lifetime: float) -> None:
        self.path = state_dir / DEVICES_FILE
        self.lifetime = lifetime
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            try:
                self._data = dict(json.loads(self.path.read_text()).get("devices", {}))
            except FileNotFoundError:
                self._data = {}
            except (ValueError, OSError) as exc:
                # Fail closed: no pairing is trusted, staff pair the tablets again.
                log.error("cannot read %s (%s); all tablets must be paired again", self.path, exc)
                self._data = {}
        return self._data

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".devices-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "devices": self._load()}, out, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def pair(self, room: str, *, by: str) -> str:
        token = new_token()
        now = datetime.now(UTC)
        self._load()[_digest(token)] = {
            "id": secrets.token_hex(4),
            "room": room,
            "by": by,
            "created": now.isoformat(),
            "expires": now.timestamp() + self.lifetime,
        }
        self._save()
        return token

    def lookup(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return None
        entry = self._load().get(_digest(token))
        if entry is None or float(entry.get("expires", 0)) <= datetime.now(UTC).timestamp():
            return None
        return entry

    def room_of(self, token: str | None) -> str | None:
        entry = self.lookup(token)
        return None if entry is None else str(entry["room"])

    def unpair(self, token: str | None) -> bool:
        if not token or self._load().pop(_digest(token), None) is None:
            return False
        self._save()
        return True

    def listing(self) -> list[dict[str, Any]]:
        return [dict(v) for v in self._load().values()]


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class Throttle:
    """Failed-login back-off per key (a device, an account): never a permanent lock.

    The first ``free`` failures cost nothing; each further one doubles the wait from ``base``
    up to ``cap``. A key's failures are forgotten ``forget`` seconds after its last failure, or
    at once on a successful login.
    """

    def __init__(
        self, *, free: int = 3, base: float = 1.0, cap: float = 60.0, forget: float = 900.0
    ) -> None:
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self._keys: dict[str, _Failures] = {}

    def wait_for(self, keys: Iterable[str], now: float) -> float:
        """Seconds until these keys may try again (0.0: go ahead)."""
        waits = [0.0]
        for key in keys:
            entry = self._entry(key, now)
            if entry is not None:
                waits.append(max(0.0, entry.blocked_until - now))
        return max(waits)

    def failed(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            entry = self._entry(key, now) or self._keys.setdefault(key, _Failures())
            entry.count += 1
            entry.last = now
            over = entry.count - self.free
            if over > 0:
                entry.blocked_until = now + min(self.cap, self.base * 2 ** (over - 1))

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)

    def failures(self, key: str, now: float) -> int:
        entry = self._entry(key, now)
        return 0 if entry is None else entry.count

    def _entry(self, key: str, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.last > self.forget:
            del self._keys[key]
            return None
        if len(self._keys) > 10_000:  # bound memory against a flood of made-up ids
            self._prune(now)
        return entry

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._keys.items() if now - e.last > self.forget]:
            del self._keys[key]
        while len(self._keys) > 10_000:
            self._keys.pop(next(iter(self._keys)))
