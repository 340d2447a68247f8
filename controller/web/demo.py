"""A demo staff login for ``sessionctl demo --port N``.

    staff_id, pin = ensure_demo_staff(config.site.state_dir)
    print(f"tablet login: {staff_id} / {pin}")

The PIN is random per state folder (OWASP ASVS 6.3.2: no default credentials) and kept in
``demo-login.txt`` (mode 0600) next to ``staff.json`` so the demo prints the same one each run.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.web.staff import StaffStore, new_pin

DEMO_STAFF = "demo"
DEMO_FILE = "demo-login.txt"


def ensure_demo_staff(state_dir: Path) -> tuple[str, str]:
    """The demo login (created on first use); returns ``(staff_id, pin)``."""
    store = StaffStore(state_dir)
    note = state_dir / DEMO_FILE
    pin = note.read_text().strip() if note.exists() else ""
    if pin and DEMO_STAFF in store and store.verify(DEMO_STAFF, pin):
        return DEMO_STAFF, pin
    pin = new_pin()
    store.add(DEMO_STAFF, pin, replace=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(pin + "\n")
    return DEMO_STAFF, pin
