"""The outbox's bookkeeping: coalesced device commands, retained topics tracked through the
whole send, a bounded queue however many replacements."""

from __future__ import annotations

from controller.mqtt import Outbox, _Outgoing


def drain(box: Outbox) -> list[tuple[str, bytes]]:
    out = []
    while (item := box.pop()) is not None:
        out.append((item.topic, item.payload))
        box.sent(item)
    return out


def test_coalesced_commands_keep_only_the_latest_per_topic_and_events_keep_order() -> None:
    box = Outbox(limit=1000)
    for i in range(50):
        box.put(_Outgoing("z2m/ceiling/set", f"{i}".encode(), 1, False, coalesce=True))
        box.put(_Outgoing("clinic/room1/event", f"e{i}".encode(), 1, False))
    out = drain(box)
    assert [p for t, p in out if t == "z2m/ceiling/set"] == [b"49"]
    assert [p for t, p in out if t.endswith("event")] == [f"e{i}".encode() for i in range(50)]


def test_retained_message_failed_in_flight_is_requeued() -> None:
    box = Outbox(limit=10)
    box.put(_Outgoing("clinic/room1/state", b"s1", 1, True))
    item = box.pop()
    assert item is not None
    box.put_front(item)  # the link failed before the PUBACK
    assert len(box) == 1
    assert drain(box) == [("clinic/room1/state", b"s1")]


def test_in_flight_message_superseded_while_sending_is_not_requeued() -> None:
    box = Outbox(limit=10)
    for retain, coalesce in ((True, False), (False, True)):
        box.put(_Outgoing("t", b"old", 1, retain, coalesce))
        item = box.pop()
        assert item is not None
        box.put(_Outgoing("t", b"new", 1, retain, coalesce))
        box.put_front(item)
        assert drain(box) == [("t", b"new")]


def test_sent_message_does_not_block_a_later_requeue() -> None:
    box = Outbox(limit=10)
    box.put(_Outgoing("t", b"1", 1, True))
    first = box.pop()
    assert first is not None
    box.sent(first)
    box.put(_Outgoing("t", b"2", 1, True))
    second = box.pop()
    assert second is not None
    box.put_front(second)
    assert drain(box) == [("t", b"2")]


def test_replacements_keep_the_queue_bounded() -> None:
    box = Outbox(limit=1000)
    for i in range(100_000):
        box.put(_Outgoing(f"state/{i % 3}", b"v", 1, True))
        box.put(_Outgoing(f"dev/{i % 5}/set", b"c", 1, False, coalesce=True))
    assert len(box) == 8
    assert box.entries <= 4 * len(box) + 64 + 2
    assert len(drain(box)) == 8


def test_full_outbox_drops_oldest_plain_message_first() -> None:
    box = Outbox(limit=100)
    for i in range(10):
        box.put(_Outgoing(f"state/{i}", b"v", 1, True))
    for i in range(10_000):
        box.put(_Outgoing("event", f"{i}".encode(), 1, False))
    assert len(box) == 100 and box.dropped == 9_910
    out = drain(box)
    assert [t for t, _ in out[:10]] == [f"state/{i}" for i in range(10)]
    assert [p for _, p in out[10:]] == [f"{i}".encode() for i in range(9_910, 10_000)]
