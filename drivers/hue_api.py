"""Synchronous Hue v1 REST calls on phue, with every answer checked, and the key file.

Call these only from a bridge's own worker thread (``drivers/hue.py`` owns one per bridge):
each call blocks for up to ``timeout`` seconds.

    bridge = HueBridge("192.168.1.20", key, timeout=5.0, state_dir=Path("/var/lib/sessionctl"))
    bridge.put_light(3, {"on": True, "bri": 200, "ct": 370, "transitiontime": 300})
    lights = bridge.get_light()          # phue's own call: GET /api/<key>/lights/

Why a subclass of ``phue.Bridge`` that replaces ``request``: phue 1.1 (the last release) does not
look at the HTTP status, catches a timeout around ``request()`` but not ``getresponse()``, and
hands error arrays back as if they were data (an unauthorised key surfaces as ``TypeError``,
phue #179). Every phue method funnels through ``request``, so fixing it there keeps phue's API
and makes every failure one of the typed errors below. phue's default config file lives in
``$HOME``; the key file here lives in the controller's state directory instead (0600).
"""

from __future__ import annotations

import http.client
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import phue

from drivers.base import DriverError

# Hue v1 error types the driver treats specially (the rest are reported as they come).
UNAUTHORIZED = 1
NOT_MODIFIABLE_WHILE_OFF = 201
LINK_BUTTON_NOT_PRESSED = 101
INTERNAL_ERROR_BUSY = 901


class HueError(DriverError):
    """A call to the bridge failed."""


class HueUnreachable(HueError):
    """No answer: connection refused, reset or timed out."""


class HueBusy(HueError):
    """The bridge asked us to slow down: HTTP 429/503 or error 901."""


class HueUnauthorized(HueError):
    """The bridge does not know our key (error type 1)."""


class HueApiError(HueError):
    """The bridge answered with one or more error objects."""

    def __init__(self, message: str, errors: list[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors

    @property
    def types(self) -> set[int]:
        return {int(e.get("type", 0)) for e in self.errors}


def normalise_host(host: str) -> str:
    """``"http://10.0.0.2:80/"`` -> ``"10.0.0.2:80"``: what http.client expects as its host."""
    host = host.strip()
    host = re.sub(r"^https?://", "", host)
    return host.rstrip("/")


def key_path(state_dir: Path, host: str) -> Path:
    """Where ``sessionctl hue pair`` keeps the key for ``host`` (one file per bridge)."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", normalise_host(host))
    return Path(state_dir) / f"hue-{safe}.json"


def write_key(path: Path, host: str, key: str) -> None:
    """Store ``key`` in phue's config format, readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        os.write(fd, json.dumps({normalise_host(host): {"username": key}}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_key(path: Path, host: str) -> str | None:
    """The stored key for ``host``, or None when there is none (not paired yet)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(normalise_host(host)) if isinstance(data, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("username"), str):
        return str(entry["username"])
    return None


def _error_objects(payload: Any) -> list[Mapping[str, Any]]:
    """Every ``{"error": {...}}`` element of a v1 answer (HTTP 200 can carry them)."""
    if not isinstance(payload, list):
        return []
    return [
        item["error"]
        for item in payload
        if isinstance(item, dict) and isinstance(item.get("error"), dict)
    ]


def check_answer(host: str, address: str, payload: Any) -> Any:
    """Raise the typed error an answer carries; return the answer otherwise."""
    errors = _error_objects(payload)
    if not errors:
        return payload
    types = {int(e.get("type", 0)) for e in errors}
    if UNAUTHORIZED in types:
        raise HueUnauthorized(
            f"the Hue bridge at {host} does not accept this key (unauthorized user); "
            f"press the bridge's link button and run `sessionctl hue pair --host {host}`"
        )
    if INTERNAL_ERROR_BUSY in types:
        raise HueBusy(f"Hue bridge at {host} is busy (error 901) on {address}")
    text = "; ".join(f"{e.get('description', '?')} (type {e.get('type')})" for e in errors)
    raise HueApiError(f"Hue bridge at {host}: {text}", errors)


class HueBridge(phue.Bridge):  # type: ignore[misc]
    """phue's Bridge with a checked transport; never reads or writes ``~/.python_hue``."""

    def __init__(self, host: str, key: str, *, timeout: float, state_dir: Path) -> None:
        self.timeout = timeout
        # With both ip and username given, phue's constructor does no I/O and never registers.
        super().__init__(
            ip=normalise_host(host),
            username=key,
            config_file_path=str(key_path(state_dir, host)),
        )

    def request(self, mode: str = "GET", address: str | None = None, data: Any = None) -> Any:
        address = address or "/"
        connection = http.client.HTTPConnection(self.ip, timeout=self.timeout)
        try:
            body = None if data is None else json.dumps(data)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(mode, address, body, headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise HueUnreachable(f"Hue bridge at {self.ip} did not answer: {exc!r}") from exc
        finally:
            connection.close()
        if response.status in (429, 503):
            raise HueBusy(f"Hue bridge at {self.ip} answered HTTP {response.status} on {address}")
        if response.status != 200:
            raise HueApiError(f"Hue bridge at {self.ip}: HTTP {response.status} on {address}", [])
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise HueApiError(f"Hue bridge at {self.ip} sent non-JSON on {address}", []) from exc
        return check_answer(self.ip, address, payload)

    def put_light(self, light_id: int, body: Mapping[str, Any]) -> Any:
        # An int id: phue treats a string as a light *name* and spends a GET looking it up.
        return self.set_light(int(light_id), dict(body))

    def put_group(self, group_id: int, body: Mapping[str, Any]) -> Any:
        return self.set_group(int(group_id), dict(body))

    def register(self, devicetype: str) -> str:
        """One pairing attempt (POST /api); the new key, or HueApiError type 101."""
        answer = self.request("POST", "/api", {"devicetype": devicetype})
        for item in answer if isinstance(answer, list) else []:
            success = item.get("success") if isinstance(item, dict) else None
            if isinstance(success, dict) and isinstance(success.get("username"), str):
                return str(success["username"])
        raise HueApiError(f"Hue bridge at {self.ip} sent no key: {answer!r}", [])
