"""sessionctl: a session environment controller for ketamine-assisted therapy rooms.

The sans-IO core (``scene``, ``timeline``, ``session``, ``checkins``, ``fades``) is plain
synchronous Python with an injected clock; ``room`` is the asyncio runtime around it.
"""

__version__ = "0.1.0"
