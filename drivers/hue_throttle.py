"""One rate budget per Hue bridge: light and group commands in sliding windows, with back-off.

The bridge documents about 10 light commands/s and 1 group command/s; newer firmware answers
overload with HTTP 429. A sliding window ("at most ``limit`` sends in any ``window`` seconds")
is the same rule the bridge applies, so a burst of up to ``limit`` goes out at once (panic on
ten lights is immediate) and the rest follows as the window slides.

The window runs on real monotonic time (rate limits are physical, never virtual) and is
thread-safe: the asyncio side asks :meth:`BridgeThrottle.delay` so it can wait without holding
the bridge's worker thread, and takes a slot with :meth:`BridgeThrottle.reserve` right before it
hands the request to the worker (a blocking caller may use :meth:`BridgeThrottle.acquire`); the
worker calls :meth:`BridgeThrottle.done` when the answer is in. A send is counted at the time its
answer arrived, which is never earlier than the bridge saw the request: so the bridge's own
window can never hold more than ``limit`` of ours, however much the network or a busy CPU
delays one request and not the next. The cost is one round trip per window.

    throttle = BridgeThrottle(light_limit=10, group_limit=1, window=1.0)
    throttle.delay("light")     # 0.0: may send now
    throttle.reserve("light")   # True: counted as sent; hand the HTTP request to the worker
    throttle.done("light")      # ... and right after its answer (or failure)
    throttle.back_off()         # after a 429: everything waits, longer each time in a row
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Literal

Kind = Literal["light", "group"]

# Slack added to the window for the bridge's own clock and rounding.
WINDOW_MARGIN = 0.02
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window + WINDOW_MARGIN
        self._sent: deque[float] = deque(maxlen=limit)

    def delay(self, now: float) -> float:
        if len(self._sent) < self.limit:
            return 0.0
        return max(0.0, self._sent[0] + self.window - now)

    def record(self, now: float) -> None:
        self._sent.append(now)

    def settle(self, now: float) -> None:
        """Move the latest send to ``now`` (when its answer came back)."""
        if self._sent:
            self._sent[-1] = max(self._sent[-1], now)


class BridgeThrottle:
    """The light and group budgets of one bridge, plus a shared back-off after overload."""

    def __init__(self, *, light_limit: int = 10, group_limit: int = 1, window: float = 1.0):
        self._windows: dict[Kind, SlidingWindow] = {
            "light": SlidingWindow(light_limit, window),
            "group": SlidingWindow(group_limit, window),
        }
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._backoff = 0.0
        self.light_interval = window / light_limit

    def delay(self, kind: Kind, now: float | None = None) -> float:
        """Seconds until a ``kind`` command may be sent."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return max(self._windows[kind].delay(now), self._paused_until - now, 0.0)

    def reserve(self, kind: Kind) -> bool:
        """Count a ``kind`` command as sent now if the budget allows it; never blocks."""
        with self._lock:
            now = time.monotonic()
            if max(self._windows[kind].delay(now), self._paused_until - now) > 0:
                return False
            self._windows[kind].record(now)
            return True

    def acquire(self, kind: Kind) -> None:
        """Block (worker thread only) until a ``kind`` command may go, and count it as sent."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = max(self._windows[kind].delay(now), self._paused_until - now)
                if wait <= 0:
                    self._windows[kind].record(now)
                    return
            time.sleep(wait)

    def done(self, kind: Kind) -> None:
        """The send that the last :meth:`reserve` allowed is over (one send at a time)."""
        with self._lock:
            self._windows[kind].settle(time.monotonic())

    def back_off(self) -> float:
        """The bridge said it is overloaded: pause every command, doubling while it repeats."""
        with self._lock:
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
            self._paused_until = time.monotonic() + self._backoff
            return self._backoff

    def succeeded(self) -> None:
        with self._lock:
            self._backoff = 0.0
