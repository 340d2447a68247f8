"""systemd's notify protocol, built in (dependencies.md §10.3): readiness, watchdog, status.

notify("READY=1")                       # does nothing outside systemd
notify("STATUS=2 rooms; broker connected")
watchdog_interval()                     # seconds between WATCHDOG=1 pings, or None
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send one state string to ``$NOTIFY_SOCKET``; False when there is none or it fails."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, if the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None
