"""The process's single MQTT connection (aiomqtt 2.x), as drivers and the room API see it.

aiomqtt 2.x does not reconnect by itself (dependencies.md §3.4), so :class:`MqttConnection`
runs the loop: connect, publish the retained ``online`` status, re-subscribe every registered
filter, flush the outbox, run the on-connect callbacks, then read messages until the link
drops; back off (capped, jittered) and do it again. Publishing never waits for the network:
messages go to a bounded outbox that the connected loop drains in order, so a driver's apply
is not stuck behind a broker outage.

    settings = MqttSettings(host="broker.local", username="room1", password="...")
    link = MqttConnection(settings, rooms=["room1"])
    link.subscribe("zigbee2mqtt/+/availability", on_availability)
    await link.start()
    await link.publish("zigbee2mqtt/ceiling/set", '{"state":"ON"}', qos=1)
    ...
    await link.close()          # publishes "offline", does not reconnect

The will: MQTT allows one will per connection. A process that serves one room uses that room's
``<prefix>/<room>/status`` as its will, so the room reads ``offline`` the moment the process
dies. A process that serves several rooms publishes each room's status ``online`` on connect
and ``offline`` on a graceful close, and uses ``<prefix>/_controller/<client_id>/status`` as
its will: after a crash consumers see that topic go ``offline`` (the rooms' own status topics
keep their last value, so consumers of a multi-room process must watch both).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import random
import re
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt import client as paho_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Awaitable[None] | None]
ConnectCallback = Callable[[], Awaitable[None] | None]

# CONNACK codes that mean "your credentials are wrong": 3.1.1 (4, 5) and 5.0 (134, 135).
_AUTH_CODES = frozenset({4, 5, 134, 135})
WINDOW = 20
"""Messages in flight at once: paho's default ``max_inflight_messages``."""
ONLINE = b"online"
OFFLINE = b"offline"


def _id_part(text: str) -> str:
    # The id appears in the multi-room will topic: no wildcards, no separators.
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def default_client_id(rooms: Sequence[str] = (), pid: int | None = None) -> str:
    """``sessionctl-<hostname>``, plus the rooms served (stable across restarts) or the pid.

    >>> default_client_id(["room1"]).endswith("-room1")
    True
    """
    base = f"sessionctl-{_id_part(socket.gethostname())}"
    if not rooms and pid is None:
        return base[:64]
    suffix = "_".join(_id_part(r) for r in rooms) if rooms else str(pid)
    ident = f"{base}-{suffix}"
    if len(ident) > 64:
        digest = hashlib.sha1(suffix.encode()).hexdigest()[:10]
        ident = f"{base[: 64 - len(digest) - 1]}-{digest}"
    return ident


class TlsSettings(BaseModel):
    """TLS to the broker: a private CA, optionally a client certificate (mutual TLS)."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    """Skip the host name check (a broker reached by IP with a name-only certificate)."""

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            key = str(self.key_file) if self.key_file else None
            ctx.load_cert_chain(str(self.cert_file), key)
        if self.insecure:
            ctx.check_hostname = False
        return ctx


class MqttSettings(BaseModel):
    """How to reach the broker. Defaults suit a broker on the same Pi.

    >>> MqttSettings(host="10.0.0.2", username="room1", password="s").port
    1883
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("sessionctl", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]*$")
    client_id: str = Field(default_factory=lambda: default_client_id(), min_length=1, max_length=64)
    """Unique per controller: a broker drops the older of two connections with one id, and
    two controllers sharing one kick each other off for ever. Left unset, the connection uses
    ``sessionctl-<hostname>-<its rooms>`` (or the pid when it serves no room)."""
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings | None = None
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive: int = Field(15, ge=2, le=3600)
    clean_session: bool = True
    """A fresh session per connect. Commands are meant for *now*: a broker holding them for a
    controller that was down for an hour would start or stop a session an hour late. A sender
    that gets no reply retries with the same ``cmd_id`` instead (commands are idempotent)."""
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)
    auth_retry: float = Field(60.0, gt=0)
    """Wait between attempts after the broker refused the credentials: an operator has to fix
    the config or the broker, and hammering it only fills its log."""
    stable_after: float = Field(10.0, gt=0)
    """Only a connection that lasted this long resets the reconnect back-off: a broker that
    accepts and then drops us at once (another client took our id, an ACL kick) must not get
    a reconnect every ``reconnect_min``."""
    outbox_limit: int = Field(1000, ge=1)
    publish_timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> MqttSettings:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


@dataclass(eq=False)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    coalesce: bool = False
    """Only the latest message for this topic matters (a device command): a newer one replaces
    it while it waits."""
    live: bool = True

    @property
    def key(self) -> tuple[bool, str] | None:
        return (self.retain, self.topic) if self.retain or self.coalesce else None


@dataclass
class _Subscription:
    topic_filter: str
    handler: Handler
    qos: int
    queue: asyncio.Queue[tuple[str, bytes]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1000)
    )
    worker: asyncio.Task[None] | None = None


class Outbox:
    """Messages waiting to be sent, in order; bounded.

    A retained topic, and a topic published with ``coalesce=True``, keeps only its latest
    message (the newer one takes the older one's turn at the back). Such a message stays
    tracked by its topic until the broker acknowledged it, so one that failed in flight goes
    back to the front unless a newer one for its topic is already waiting. When full, the
    oldest non-retained message is dropped first.

    Every operation is amortised O(1): replaced, sent and dropped entries are only marked, and
    the queues are compacted once the marked ones outnumber the live ones.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._items: deque[_Outgoing] = deque()
        # The non-retained entries of _items, in the same order: what a full outbox drops first.
        self._plain: deque[_Outgoing] = deque()
        # Latest message per key, queued or in flight.
        self._latest: dict[tuple[bool, str], _Outgoing] = {}
        self._live = 0
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return self._live

    @property
    def entries(self) -> int:
        """Entries held, live or marked: stays within a constant factor of ``len()``."""
        return len(self._items) + len(self._plain)

    def put(self, item: _Outgoing) -> None:
        key = item.key
        if key is not None:
            old = self._latest.get(key)
            if old is not None and old.live:
                old.live = False
                self._live -= 1
            self._latest[key] = item
        item.live = True
        self._items.append(item)
        if not item.retain:
            self._plain.append(item)
        self._live += 1
        self._settle()

    def put_front(self, item: _Outgoing) -> None:
        """Give back a message whose send failed, so it goes first after reconnect."""
        key = item.key
        if item.live or (key is not None and self._latest.get(key) is not item):
            return  # already queued, or a newer message for its topic is waiting
        item.live = True
        self._items.appendleft(item)
        if not item.retain:
            self._plain.appendleft(item)
        self._live += 1
        self._settle()

    def pop(self) -> _Outgoing | None:
        """The next message to send; it stays tracked until :meth:`sent` or :meth:`put_front`."""
        while self._items:
            item = self._items.popleft()
            if item.live:
                item.live = False
                self._live -= 1
                return item
        self._plain.clear()  # only entries already sent or dropped were left
        self.ready.clear()
        return None

    def sent(self, item: _Outgoing) -> None:
        """The broker has ``item``: forget it."""
        key = item.key
        if key is not None and self._latest.get(key) is item:
            del self._latest[key]

    def _settle(self) -> None:
        while self._live > self.limit:
            self._drop_one()
        if len(self._items) + len(self._plain) > 4 * self._live + 64:
            self._items = deque(i for i in self._items if i.live)
            self._plain = deque(i for i in self._items if not i.retain)
        self.ready.set()

    def _drop_one(self) -> None:
        victim: _Outgoing | None = None
        while self._plain and victim is None:
            candidate = self._plain.popleft()
            victim = candidate if candidate.live else None
        while victim is None:
            candidate = self._items.popleft()
            victim = candidate if candidate.live else None
        self.sent(victim)
        victim.live = False
        self._live -= 1
        self.dropped += 1


class MqttConnection:
    """One MQTT connection shared by a process; implements ``drivers.base.MqttLink``."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        rooms: Sequence[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.rooms = tuple(rooms)
        self.client_id = (
            settings.client_id
            if "client_id" in settings.model_fields_set
            else default_client_id(self.rooms, os.getpid())
        )
        self.failures = 0
        """Failed connection attempts in a row (a connection shorter than ``stable_after``
        counts as one); drives the back-off."""
        self.connected = False
        self.last_error: str | None = None
        self.connects = 0
        self.attempts = 0
        self._rng = rng or random.Random()
        self._outbox = Outbox(settings.outbox_limit)
        self._subs: list[_Subscription] = []
        self._on_connect: list[ConnectCallback] = []
        self._on_disconnect: list[ConnectCallback] = []
        self._client: aiomqtt.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._connected_event = asyncio.Event()
        self._auth_logged = False
        self._inflight: dict[int, _Outgoing] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- topics ---------------------------------------------------------------------------

    @property
    def status_topics(self) -> tuple[str, ...]:
        """Where ``online``/``offline`` is published, retained: each room's status topic."""
        rooms = tuple(f"{self.settings.prefix}/{room}/status" for room in self.rooms)
        if len(rooms) == 1:
            return rooms
        return (*rooms, self.will_topic)

    @property
    def will_topic(self) -> str:
        if len(self.rooms) == 1:
            return f"{self.settings.prefix}/{self.rooms[0]}/status"
        return f"{self.settings.prefix}/_controller/{self.client_id}/status"

    # -- MqttLink -------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 0,
        retain: bool = False,
        coalesce: bool = False,
    ) -> None:
        """Queue a message; it is sent now if connected, else in order after reconnect.

        ``coalesce=True`` is for device commands: only the latest message per topic waits in
        the outbox, so a backlog built up during an outage (panic, release, ...) is not
        replayed on reconnect, and a new command does not queue behind stale ones for the same
        device. Events and replies are never coalesced: they are delivered in order.
        """
        self.publish_nowait(topic, payload, qos=qos, retain=retain, coalesce=coalesce)

    def publish_nowait(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 0,
        retain: bool = False,
        coalesce: bool = False,
    ) -> None:
        """:meth:`publish` for synchronous callers (listeners); same order, same queue."""
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        self._outbox.put(_Outgoing(topic, data, qos, retain, coalesce))

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        """Call ``handler(topic, payload)`` for every message matching the filter, in order.

        Each subscription has its own worker, so a slow handler delays only its own messages.
        """
        sub = _Subscription(topic_filter, handler, qos)
        self._subs.append(sub)
        if self._runner is not None:
            sub.worker = asyncio.create_task(self._work(sub))
        client = self._client
        if self.connected and client is not None:
            self._spawn(self._subscribe_now(client, sub))

    def unsubscribe(self, topic_filter: str, handler: Handler) -> None:
        for sub in [s for s in self._subs if s.topic_filter == topic_filter]:
            if sub.handler == handler:
                self._subs.remove(sub)
                if sub.worker is not None:
                    sub.worker.cancel()

    def on_connect(self, callback: ConnectCallback) -> None:
        self._on_connect.append(callback)

    def on_disconnect(self, callback: ConnectCallback) -> None:
        """Call ``callback`` when an established connection is lost (not on close)."""
        self._on_disconnect.append(callback)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._outbox)

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    def health(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "last_error": self.last_error,
            "connects": self.connects,
            "failures": self.failures,
            "queued": self.queued,
            "dropped": self.dropped,
        }

    async def start(self) -> None:
        """Start connecting in the background; returns at once (the broker may be down)."""
        if self._runner is not None:
            return
        self._closing = False
        for sub in self._subs:
            sub.worker = asyncio.create_task(self._work(sub))
        self._runner = asyncio.create_task(self._run(), name="mqtt-link")

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until the outbox is empty; False if it did not empty in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._outbox) or self._inflight:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (bounded), publish ``offline``, disconnect, stay disconnected."""
        if self._runner is None:
            return
        if self.connected:
            for topic in self.status_topics:
                await self.publish(topic, OFFLINE, qos=1, retain=True)
            await self.flush(timeout)
        self._closing = True
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        self._runner = None
        for sub in self._subs:
            if sub.worker is not None:
                sub.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.worker
                sub.worker = None

    # -- the connection loop --------------------------------------------------------------

    def _make_client(self) -> aiomqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        properties = None
        clean_session: bool | None = s.clean_session
        clean_start: Any = paho_client.MQTT_CLEAN_START_FIRST_ONLY
        if v5:
            clean_session = None
            clean_start = s.clean_session
            if not s.clean_session:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = 3600
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self.will_topic, OFFLINE, qos=1, retain=True),
            clean_session=clean_session,
            clean_start=clean_start,
            properties=properties,
            keepalive=s.keepalive,
            timeout=s.publish_timeout,
            tls_context=s.tls.context() if s.tls else None,
            tls_insecure=s.tls.insecure if s.tls else None,
            max_queued_incoming_messages=10000,
            # aiomqtt leaves Nagle on: a small publish then waits for the peer's delayed ACK
            # (~40 ms per hop on Linux, measured by bench/mqtt_latency.py).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.failures = 0
        while not self._closing:
            self.attempts += 1
            connected_at: float | None = None
            delay = self.settings.reconnect_min
            try:
                client = self._make_client()
                async with client:
                    connected_at = loop.time()
                    await self._connected(client)
                    await self._serve(client)
            except (aiomqtt.MqttError, OSError) as exc:
                self._count_failure(connected_at, loop.time())
                delay = self._on_failure(exc, self.failures - 1)
            except Exception as exc:
                # A bug or a bad setting must not end the link for good: log it, retry slowly.
                log.exception("MQTT link failed unexpectedly")
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self.settings.reconnect_max
                self._count_failure(connected_at, loop.time())
            else:
                self._count_failure(connected_at, loop.time())
                delay = self._backoff(self.failures - 1)
            finally:
                self._client = None
                if self.connected:
                    self.connected = False
                    self._connected_event.clear()
                    if not self._closing:
                        self._fire(self._on_disconnect)
            if not self._closing:
                await asyncio.sleep(delay)

    def _count_failure(self, connected_at: float | None, now: float) -> None:
        if connected_at is not None and now - connected_at >= self.settings.stable_after:
            self.failures = 0
        elif connected_at is not None and self.failures:
            log.warning(
                "MQTT connection as %r lasted %.1f s: is another client using this id?",
                self.client_id,
                now - connected_at,
            )
        self.failures += 1

    def _on_failure(self, exc: Exception, failures: int) -> float:
        code = getattr(exc, "rc", None)
        value = getattr(code, "value", code)
        if isinstance(exc, MqttConnectError) and value in _AUTH_CODES:
            self.last_error = f"broker refused the credentials: {exc}"
            if not self._auth_logged:
                self._auth_logged = True
                log.error(
                    "MQTT broker %s:%s refused user %r (%s); retrying every %.0f s",
                    self.settings.host,
                    self.settings.port,
                    self.settings.username,
                    exc,
                    self.settings.auth_retry,
                )
            return self.settings.auth_retry
        was_connected = self.connected
        self.last_error = str(exc) or type(exc).__name__
        delay = self._backoff(failures)
        level = logging.WARNING if was_connected or failures == 0 else logging.DEBUG
        log.log(
            level,
            "MQTT link to %s:%s: %s; retry in %.1f s",
            self.settings.host,
            self.settings.port,
            self.last_error,
            delay,
        )
        return delay

    def _backoff(self, failures: int) -> float:
        """Exponential, capped, with jitter so rooms that lost one broker do not all return
        in the same instant."""
        s = self.settings
        ceiling = min(s.reconnect_max, s.reconnect_min * (2 ** min(failures, 30)))
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    async def _connected(self, client: aiomqtt.Client) -> None:
        self._client = client
        for topic in self.status_topics:
            await client.publish(topic, ONLINE, qos=1, retain=True)
        for sub in list(self._subs):
            await client.subscribe(sub.topic_filter, qos=sub.qos)
        self.connected = True
        self.connects += 1
        self.last_error = None
        self._auth_logged = False
        self._connected_event.set()
        log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)
        self._fire(self._on_connect)

    async def _subscribe_now(self, client: aiomqtt.Client, sub: _Subscription) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.subscribe(sub.topic_filter, qos=sub.qos)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Read and send until either side fails; a failed send also means reconnect."""
        reader = asyncio.create_task(self._read(client))
        sender = asyncio.create_task(self._drain(client))
        try:
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, sender):
                task.cancel()
            await asyncio.gather(reader, sender, return_exceptions=True)
        for task in done:
            task.result()

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._dispatch(str(message.topic), message.payload)

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Send the outbox in order, up to ``WINDOW`` messages awaiting their PUBACK at once.

        Each publish hands its packet to paho synchronously when its task first runs, and
        tasks first run in creation order, so the wire order is the outbox order. If the link
        fails, every unacknowledged message goes back to the front of the outbox, in order,
        and is sent again after reconnect (QoS 1 is at-least-once anyway).
        """
        window = asyncio.Semaphore(WINDOW)
        inflight: dict[int, _Outgoing] = {}
        self._inflight = inflight
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tasks: set[asyncio.Task[None]] = set()

        async def send(seq: int, item: _Outgoing) -> None:
            try:
                await client.publish(item.topic, item.payload, qos=item.qos, retain=item.retain)
                del inflight[seq]
                self._outbox.sent(item)
            except aiomqtt.MqttError as exc:
                if not failed.done():
                    failed.set_exception(exc)
                    self._outbox.ready.set()  # wake the loop above to see the failure
            finally:
                window.release()

        seq = 0
        try:
            while True:
                # The window slot first, then the message, with no await in between: a
                # cancellation (the link dropped) never finds a message taken off the outbox
                # and not yet in ``inflight``.
                await window.acquire()
                while True:
                    if failed.done():
                        failed.result()
                    item = self._outbox.pop()
                    if item is not None:
                        break
                    await self._outbox.ready.wait()
                seq += 1
                inflight[seq] = item
                task = asyncio.create_task(send(seq, item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            for item in reversed(list(inflight.values())):
                self._outbox.put_front(item)
            inflight.clear()

    def _dispatch(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        matched = aiomqtt.Topic(topic)
        for sub in self._subs:
            if matched.matches(sub.topic_filter):
                if sub.queue.full():
                    sub.queue.get_nowait()
                    log.warning(
                        "MQTT handler for %s is behind; dropped a message", sub.topic_filter
                    )
                sub.queue.put_nowait((topic, data))

    async def _work(self, sub: _Subscription) -> None:
        while True:
            topic, payload = await sub.queue.get()
            try:
                result = sub.handler(topic, payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("MQTT handler for %s failed on %s", sub.topic_filter, topic)

    def _fire(self, callbacks: list[ConnectCallback]) -> None:
        for callback in list(callbacks):
            self._spawn(self._call(callback))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, callback: ConnectCallback) -> None:
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("MQTT connect/disconnect callback %r failed", callback)
