"""Events: what happened in a room, for the journal, the audit trail, MQTT and the tablet.

The core returns events from every command and every advance of time; the runtime journals
them before it tells any driver, then publishes them. Event data never holds patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """``kind`` names what happened (``phase_started``, ``checkin_due``, ``panic``...)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        # The event's own kind wins over any "kind" a payload might carry.
        return {**self.data, "kind": self.kind}
