"""Check-in lifecycle: due → acknowledged → responded, escalating while unacknowledged.

Sans-IO; times are monotonic seconds. A check-in escalates one priority step (low → medium →
high) when it is not acknowledged within its window, and again after each further
``escalate_after``. Escalation runs in real time even while the session is paused: a pause is
often the moment a patient needs attention (DESIGN.md §4). Nothing is lost or shown twice: a
check-in id opens at most once per session, and every transition is an event::

    book = CheckinBook()
    book.open(cue, now=600.0)            # -> [Event("checkin_due", ...)]
    book.advance(now=900.0)              # -> [Event("checkin_escalated", ...)] if not acked
    book.acknowledge(cue.id, "nurse-3", now=910.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from controller.events import Event
from controller.scene import CheckinCue
from drivers.base import Priority, PromptView

State = Literal["due", "acknowledged", "responded", "closed"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high")


class CheckinRefused(Exception):
    """A staff action on a check-in that cannot be taken; ``str()`` is the reason."""


@dataclass
class Checkin:
    cue: CheckinCue
    due_at: float
    priority: Priority
    state: State = "due"
    next_escalation: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    response: str | None = None

    @property
    def id(self) -> str:
        return self.cue.id

    @property
    def is_open(self) -> bool:
        if self.state == "due":
            return True
        return self.state == "acknowledged" and bool(self.cue.responses)

    def view(self, now: float) -> PromptView:
        escalates_in = None
        if self.next_escalation is not None:
            escalates_in = max(0.0, self.next_escalation - now)
        return PromptView(
            id=self.id,
            kind=self.cue.kind,
            prompt=self.cue.prompt,
            priority=self.priority,
            state="due" if self.state == "due" else "acknowledged",
            due_for=max(0.0, now - self.due_at),
            escalates_in=escalates_in,
            responses=tuple((r.code, r.label) for r in self.cue.responses),
        )


def _raise(priority: Priority) -> Priority:
    return PRIORITIES[min(len(PRIORITIES) - 1, PRIORITIES.index(priority) + 1)]


class CheckinBook:
    """Every check-in of one session, open or resolved."""

    def __init__(self) -> None:
        self.items: dict[str, Checkin] = {}

    def open(self, cue: CheckinCue, now: float) -> list[Event]:
        if cue.id in self.items:
            return []
        item = Checkin(cue, now, cue.priority)
        item.next_escalation = now + cue.ack_within if cue.priority != "high" else None
        self.items[cue.id] = item
        return [
            Event(
                "checkin_due",
                {
                    "checkin": cue.id,
                    "prompt": cue.kind,
                    "priority": cue.priority,
                    "chime": cue.chime,
                },
            )
        ]

    def advance(self, now: float) -> list[Event]:
        events: list[Event] = []
        for item in self.items.values():
            while (
                item.state == "due"
                and item.next_escalation is not None
                and now >= item.next_escalation
            ):
                item.priority = _raise(item.priority)
                due = item.next_escalation
                item.next_escalation = (
                    None if item.priority == "high" else due + item.cue.escalate_after
                )
                events.append(
                    Event(
                        "checkin_escalated",
                        {
                            "checkin": item.id,
                            "priority": item.priority,
                            "overdue": round(due - item.due_at, 3),
                        },
                    )
                )
        return events

    def next_deadline(self) -> float | None:
        times = [
            i.next_escalation
            for i in self.items.values()
            if i.state == "due" and i.next_escalation is not None
        ]
        return min(times) if times else None

    def _get(self, checkin_id: str) -> Checkin:
        item = self.items.get(checkin_id)
        if item is None:
            raise CheckinRefused(f"no check-in {checkin_id!r} has come due in this session")
        if item.state == "closed":
            raise CheckinRefused(f"check-in {checkin_id!r} was closed when the session ended")
        return item

    def acknowledge(self, checkin_id: str, actor: str, now: float) -> list[Event]:
        item = self._get(checkin_id)
        if item.state != "due":
            raise CheckinRefused(
                f"check-in {checkin_id!r} was already acknowledged by {item.acknowledged_by}"
            )
        item.state = "acknowledged"
        item.acknowledged_by = actor
        item.acknowledged_at = now
        item.next_escalation = None
        return [
            Event(
                "checkin_acknowledged",
                {
                    "checkin": item.id,
                    "actor": actor,
                    "after": round(now - item.due_at, 3),
                    "priority": item.priority,
                },
            )
        ]

    def respond(
        self, checkin_id: str, option: str, actor: str, now: float
    ) -> tuple[list[Event], str | None]:
        """Record a response option; returns the events and the overlay it switches on."""
        item = self._get(checkin_id)
        choice = next((r for r in item.cue.responses if r.code == option), None)
        if choice is None:
            codes = ", ".join(r.code for r in item.cue.responses) or "none"
            raise CheckinRefused(
                f"check-in {checkin_id!r} has no option {option!r} (options: {codes})"
            )
        if item.state == "responded":
            raise CheckinRefused(f"check-in {checkin_id!r} already has a response")
        events = self.acknowledge(checkin_id, actor, now) if item.state == "due" else []
        item.state = "responded"
        item.response = option
        events.append(
            Event("checkin_responded", {"checkin": item.id, "actor": actor, "option": option})
        )
        return events, choice.overlay

    def close_all(self, now: float, reason: str) -> list[Event]:
        events = []
        for item in self.items.values():
            if item.is_open:
                item.state = "closed"
                item.next_escalation = None
                events.append(Event("checkin_closed", {"checkin": item.id, "reason": reason}))
        return events

    def open_items(self) -> list[Checkin]:
        return [i for i in self.items.values() if i.is_open]

    def views(self, now: float) -> list[PromptView]:
        order = {"high": 0, "medium": 1, "low": 2}
        items = sorted(self.open_items(), key=lambda i: (order[i.priority], i.due_at))
        return [i.view(now) for i in items]

    # -- persistence ------------------------------------------------------------------

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """JSON-able state; times are stored as ages so they survive a reboot."""
        return [
            {
                "id": i.id,
                "state": i.state,
                "priority": i.priority,
                "age": now - i.due_at,
                "escalates_in": None if i.next_escalation is None else i.next_escalation - now,
                "acknowledged_by": i.acknowledged_by,
                "acknowledged_age": None if i.acknowledged_at is None else now - i.acknowledged_at,
                "response": i.response,
            }
            for i in self.items.values()
        ]

    @classmethod
    def restore(
        cls, data: list[dict[str, Any]], cues: dict[str, CheckinCue], now: float
    ) -> CheckinBook:
        book = cls()
        for row in data:
            cue = cues.get(row["id"])
            if cue is None:
                continue
            item = Checkin(cue, now - row["age"], row["priority"], row["state"])
            if row["escalates_in"] is not None:
                item.next_escalation = now + row["escalates_in"]
            item.acknowledged_by = row["acknowledged_by"]
            if row["acknowledged_age"] is not None:
                item.acknowledged_at = now - row["acknowledged_age"]
            item.response = row["response"]
            book.items[item.id] = item
        return book
