"""Philips Hue lights over the bridge's v1 REST API (phue), paced to the bridge's rate limits.

Room config::

    drivers:
      hue:
        type: hue
        host: 192.168.1.20          # or "host:port"
        lights: {ceiling: 1, lamp: 2, wall: 3}
        groups: auto                # or {room: 1}; or false to never use group actions
        timeout: 1.5                # seconds per bridge call (a bridge on the LAN answers in ms)
        # key_file: hue.json        # default <state dir>/hue-<host>.json (`sessionctl hue pair`)
        # username: <key>           # instead of a key file

How it behaves:

- Every phue call runs on the bridge's own single worker thread with a timeout, so the event loop
  and other drivers never wait on the bridge. The timeout starts when the call starts on the
  worker: time queued behind another room's call on the same bridge is not the bridge's.
- One :class:`~drivers.hue_throttle.BridgeThrottle` per bridge keeps inside ~10 light and 1 group
  command per second, and backs off on HTTP 429 / error 901. The drivers of one bridge take
  turns on the asyncio side: plan, take a slot of the budget, send, then the next driver; none
  ever waits for the budget inside the worker (or inside its call's timeout).
- ``apply()`` records the desired state per device; a sender task turns whatever is pending into
  requests. Commands that arrive while earlier ones wait for the rate budget replace them (latest
  desired state wins), and the plan is made again before every request, so panic overtakes a
  long queue. When every light of a bridge group wants the same body, one group action goes.
- Fades are native: ``transitiontime`` up to 6553.5 s, so a 40-minute fade is one request per
  light. A new state pre-empts a running transition (see :mod:`drivers.hue_payload`).
- Bridge unreachable: ``health.available`` goes False, availability is reported, and a background
  task retries with back-off; when the bridge answers, availability is reported again and the
  room re-sends the desired state. An unknown key stops the driver with one clear error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from drivers.base import (
    Capabilities,
    DriverConfigError,
    DriverContext,
    DriverError,
    DriverHealth,
    LightCommand,
)
from drivers.hue_api import (
    NOT_MODIFIABLE_WHILE_OFF,
    HueApiError,
    HueBridge,
    HueBusy,
    HueError,
    HueUnauthorized,
    HueUnreachable,
    key_path,
    normalise_host,
    read_key,
)
from drivers.hue_payload import Lamp, Request, lamp_from_bridge, plan_requests, state_body
from drivers.hue_throttle import BridgeThrottle

log = logging.getLogger(__name__)

T = TypeVar("T")

# Extra time the event loop gives a bridge call beyond the socket timeout, so the worker's own
# timeout normally ends the call first (cleanly) and ours is only the backstop.
CALL_GRACE = 0.5
MAX_BUSY_RETRIES = 5


@dataclass(frozen=True)
class HueOptions:
    """The driver's options from the room config, checked."""

    host: str
    lights: dict[str, int]
    groups: Literal["auto", "off"] | frozenset[int]
    username: str | None
    key_file: Path
    timeout: float = 1.5
    light_limit: int = 10
    group_limit: int = 1
    rate_window: float = 1.0
    retry_initial: float = 1.0
    retry_max: float = 30.0

    @classmethod
    def parse(cls, name: str, options: Mapping[str, Any], state_dir: Path) -> HueOptions:
        host = options.get("host")
        if not isinstance(host, str) or not host.strip():
            raise DriverConfigError(f"{name}: 'host' must be the bridge's address")
        host = normalise_host(host)
        lights = _parse_ids(name, "lights", options.get("lights"))
        if not lights:
            raise DriverConfigError(f"{name}: 'lights' must map device names to Hue light ids")
        if len(set(lights.values())) != len(lights):
            raise DriverConfigError(f"{name}: two devices share one Hue light id")
        raw_key_file = options.get("key_file")
        key_file = Path(raw_key_file) if raw_key_file else key_path(state_dir, host)
        username = options.get("username")
        try:
            return cls(
                host=host,
                lights=lights,
                groups=_parse_groups(name, options.get("groups", "auto")),
                username=str(username) if username else None,
                key_file=key_file if key_file.is_absolute() else Path(state_dir) / key_file,
                timeout=float(options.get("timeout", 1.5)),
                light_limit=int(options.get("light_limit", 10)),
                group_limit=int(options.get("group_limit", 1)),
                rate_window=float(options.get("rate_window", 1.0)),
                retry_initial=float(options.get("retry_initial", 1.0)),
                retry_max=float(options.get("retry_max", 30.0)),
            )
        except (TypeError, ValueError) as exc:
            raise DriverConfigError(f"{name}: bad Hue option: {exc}") from exc


def _parse_ids(name: str, key: str, raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DriverConfigError(f"{name}: '{key}' must map names to Hue ids")
    try:
        return {str(k): int(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"{name}: '{key}' ids must be numbers: {exc}") from exc


def _parse_groups(name: str, raw: Any) -> Literal["auto", "off"] | frozenset[int]:
    if raw in (None, False, "off", "none") or raw == {}:
        return "off"
    if raw in ("auto", True):
        return "auto"
    return frozenset(_parse_ids(name, "groups", raw).values())


@dataclass
class _BridgeLink:
    """What every driver on one bridge shares: the worker thread, the rate budget, and the
    turn to send (held from taking a slot of the budget until the bridge answered)."""

    executor: ThreadPoolExecutor
    throttle: BridgeThrottle
    users: int = 0
    _lock: asyncio.Lock | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def turn(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock


_LINKS: dict[str, _BridgeLink] = {}


def _acquire_link(opts: HueOptions) -> _BridgeLink:
    link = _LINKS.get(opts.host)
    if link is None:
        link = _BridgeLink(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hue-{opts.host}"),
            BridgeThrottle(
                light_limit=opts.light_limit,
                group_limit=opts.group_limit,
                window=opts.rate_window,
            ),
        )
        _LINKS[opts.host] = link
    link.users += 1
    return link


def _release_link(host: str, link: _BridgeLink) -> None:
    link.users -= 1
    if link.users <= 0 and _LINKS.get(host) is link:
        del _LINKS[host]
        # Never wait here: the worker may be blocked on a dead bridge until its socket timeout.
        link.executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Pending:
    command: LightCommand
    gen: int
    attempts: int = 0


@dataclass
class _Waiter:
    """One apply() call waiting for its devices to be sent (or superseded)."""

    gens: dict[str, int]
    future: asyncio.Future[None]
    devices: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.devices = frozenset(self.gens)


class HueLights:
    """A Hue bridge's lights as devices of one driver; see the module docstring."""

    kind = "hue"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self._context = context
        self._opts = HueOptions.parse(name, options, context.state_dir)
        self.devices = tuple(self._opts.lights)
        self.health = DriverHealth()
        self._lamps = {d: Lamp(light_id) for d, light_id in self._opts.lights.items()}
        self._groups: dict[int, frozenset[str]] = {}
        self._known_on: dict[str, bool | None] = {}
        self._pending: dict[str, _Pending] = {}
        self._sent_gen: dict[str, int] = {}
        self._gen = 0
        self._waiters: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._link: _BridgeLink | None = None
        self._bridge: HueBridge | None = None
        self._key: str | None = None
        self._fatal: HueError | None = None
        # A standing problem found at discovery (e.g. a light id the bridge does not have).
        self._note: str | None = None

    # -- the LightDriver protocol ------------------------------------------------------------

    def capabilities(self, device: str) -> Capabilities:
        light_interval = self._opts.rate_window / self._opts.light_limit
        # A software-stepped fade on every light at once must still fit the bridge's budget.
        min_interval = max(light_interval, len(self.devices) * light_interval)
        return self._lamps[device].capabilities(min_interval)

    async def start(self) -> None:
        self._link = _acquire_link(self._opts)
        self._sender = asyncio.create_task(self._send_loop(), name=f"{self.name}-sender")
        try:
            # One call's budget for the whole discovery: the room bounds start() as well, and a
            # dead bridge is the recovery task's job, not start()'s.
            async with asyncio.timeout(self._opts.timeout + CALL_GRACE):
                if await self._connect():
                    await self._discover()
        except HueUnauthorized as exc:
            self._set_fatal(exc)
        except HueError as exc:
            self._lost(exc)
        except TimeoutError:
            self._lost(HueUnreachable(f"Hue bridge at {self._opts.host} did not answer"))

    async def close(self) -> None:
        tasks = [t for t in (self._sender, self._recovery) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail_all(DriverError(f"{self.name}: driver closed"))
        if self._link is not None:
            _release_link(self._opts.host, self._link)
            self._link = None

    async def apply(self, commands: Mapping[str, LightCommand]) -> None:
        unknown = sorted(set(commands) - set(self._lamps))
        if unknown:
            raise DriverError(f"{self.name}: no device {', '.join(map(repr, unknown))}")
        if not commands:
            return
        await self._check_ready()
        waiter = _Waiter(self._enqueue(commands), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._wake.set()
        budget = self._apply_budget()
        try:
            async with asyncio.timeout(budget):
                await waiter.future
        except TimeoutError:
            raise DriverError(
                f"{self.name}: Hue bridge at {self._opts.host} did not take the commands "
                f"within {budget:.1f} s"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # -- queueing ------------------------------------------------------------------------------

    def _enqueue(self, commands: Mapping[str, LightCommand]) -> dict[str, int]:
        gens: dict[str, int] = {}
        for device, command in commands.items():
            self._gen += 1
            self._pending[device] = _Pending(command, self._gen)
            gens[device] = self._gen
        return gens

    def apply_budget(self, devices: int) -> float:
        """How long the room should allow one apply() to ``devices`` lights (drivers.base)."""
        interval = self._throttle.light_interval * 1.2
        return (
            self._opts.timeout
            + CALL_GRACE
            + (len(self._pending) + devices) * interval
            + (self._opts.rate_window)
        )

    def _apply_budget(self) -> float:
        """How long apply() waits: one bridge call, plus the queue at the bridge's pace."""
        throttle = self._throttle
        queued = len(self._pending) * throttle.light_interval * 1.2
        return self._opts.timeout + CALL_GRACE + queued + self._opts.rate_window

    async def _check_ready(self) -> None:
        if self._fatal is not None:
            await self._retry_fatal()
        if self._fatal is not None:
            raise HueUnauthorized(str(self._fatal))
        if not self.health.available:
            raise HueUnreachable(
                f"{self.name}: Hue bridge at {self._opts.host} is unreachable "
                f"({self.health.error}); retrying in the background"
            )
        if self._bridge is None:
            raise DriverError(f"{self.name}: not started")

    # -- the sender ----------------------------------------------------------------------------

    @property
    def _throttle(self) -> BridgeThrottle:
        assert self._link is not None, "start() first"
        return self._link.throttle

    async def _send_loop(self) -> None:
        while True:
            if not self._pending or not self.health.available or self._fatal is not None:
                self._wake.clear()
                await self._wake.wait()
                continue
            assert self._link is not None
            async with self._link.turn():
                # Planned in our turn: another driver's send may have used the budget since.
                if not self._pending or not self.health.available or self._fatal is not None:
                    continue
                request, wait = self._next_request()
                if request is not None:
                    if self._throttle.reserve(request.target):
                        await self._send(request)
                        continue
                    wait = self._throttle.delay(request.target)
            # Re-plan after the wait: newer commands that arrive meanwhile replace these.
            await asyncio.sleep(wait)

    def _next_request(self) -> tuple[Request | None, float]:
        throttle = self._throttle
        now = time.monotonic()
        waits = {"light": throttle.delay("light", now), "group": throttle.delay("group", now)}
        # A group action is worth waiting for only while it beats sending its lights one by one.
        groups = {
            gid: members
            for gid, members in self._groups.items()
            if waits["group"] <= len(members) * throttle.light_interval
        }
        bodies = {
            device: state_body(p.command, self._lamps[device], self._known_on.get(device))
            for device, p in self._pending.items()
        }
        requests = plan_requests(bodies, self._lamps, groups)
        for request in requests:
            if waits[request.target] <= 0:
                return request, 0.0
        return None, min(waits[r.target] for r in requests)

    async def _send(self, request: Request) -> None:
        entries = {d: self._pending.pop(d) for d in request.devices}
        try:
            await self._call(lambda: self._put(request))
        except HueBusy as exc:
            pause = self._throttle.back_off()
            log.warning("%s: %s; pausing %.1f s", self.name, exc, pause)
            self._requeue(entries, exc)
        except HueUnauthorized as exc:
            self._set_fatal(exc)
        except HueUnreachable as exc:
            self._lost(exc)
        except HueApiError as exc:
            self._api_error(entries, exc)
        except Exception as exc:  # a bug or a phue surprise must not kill the sender
            log.exception("%s: sending %s failed", self.name, request.path)
            self.health.errors += 1
            self._fail_devices({d: e.gen for d, e in entries.items()}, exc)
        else:
            self._throttle.succeeded()
            self._confirm(request, entries)

    def _put(self, request: Request) -> Any:
        """Runs on the bridge's worker thread."""
        bridge = self._bridge
        assert bridge is not None
        try:
            if request.target == "group":
                return bridge.put_group(request.target_id, request.body)
            return bridge.put_light(request.target_id, request.body)
        finally:
            self._throttle.done(request.target)

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the bridge's worker; the timeout counts from when it starts there.

        Waiting for the worker (another driver's call on the same bridge) is bounded too, by
        one call's time: the worker's own socket timeout ends a stuck call by then.
        """
        assert self._link is not None
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        def mark() -> None:
            if not started.done():
                started.set_result(None)

        def run() -> T:
            loop.call_soon_threadsafe(mark)
            return fn()

        limit = self._opts.timeout + CALL_GRACE
        future = loop.run_in_executor(self._link.executor, run)
        try:
            async with asyncio.timeout(limit) as scope:
                await asyncio.wait((started, future), return_when=asyncio.FIRST_COMPLETED)
                scope.reschedule(loop.time() + limit)
                return await future
        except TimeoutError as exc:
            future.cancel()
            raise HueUnreachable(
                f"Hue bridge at {self._opts.host} did not answer within {self._opts.timeout} s"
            ) from exc
        finally:
            started.cancel()

    # -- outcomes ------------------------------------------------------------------------------

    def _confirm(self, request: Request, entries: Mapping[str, _Pending]) -> None:
        now_on = request.body.get("on") is not False
        for device, entry in entries.items():
            self._sent_gen[device] = max(self._sent_gen.get(device, 0), entry.gen)
            self._known_on[device] = now_on
        self.health.error = self._note
        for waiter in self._waiters:
            done = all(self._sent_gen.get(d, 0) >= g for d, g in waiter.gens.items())
            if done and not waiter.future.done():
                waiter.future.set_result(None)

    def _requeue(self, entries: Mapping[str, _Pending], exc: HueError) -> None:
        gave_up: dict[str, int] = {}
        for device, entry in entries.items():
            if device in self._pending:
                continue  # a newer command for this device is already waiting
            entry.attempts += 1
            if entry.attempts > MAX_BUSY_RETRIES:
                gave_up[device] = entry.gen
            else:
                self._pending[device] = entry
        if gave_up:
            self._fail_devices(gave_up, exc)

    def _api_error(self, entries: Mapping[str, _Pending], exc: HueApiError) -> None:
        self.health.errors += 1
        first_try = all(e.attempts == 0 for e in entries.values())
        if NOT_MODIFIABLE_WHILE_OFF in exc.types and first_try:
            # Someone switched the lamp off behind our back: forget what we believed, resend
            # with on:true.
            for device in entries:
                self._known_on[device] = None
            self._requeue(entries, exc)
            return
        self.health.error = str(exc)
        self._fail_devices({d: e.gen for d, e in entries.items()}, exc)

    def _fail_devices(self, gens: Mapping[str, int], exc: Exception) -> None:
        error = DriverError(f"{self.name}: {exc}")
        for device in gens:
            self._known_on[device] = None
        for waiter in self._waiters:
            hit = any(d in gens and waiter.gens[d] <= gens[d] for d in waiter.devices)
            if hit and not waiter.future.done():
                waiter.future.set_exception(error)

    def _fail_all(self, error: DriverError) -> None:
        self._pending.clear()
        self._known_on.clear()
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    # -- availability --------------------------------------------------------------------------

    def _set_unavailable(self, message: str) -> None:
        self.health.error = message
        self.health.errors += 1
        if self.health.available:
            self.health.available = False
            self._context.report_availability(self.name, None, False)

    def _set_available(self) -> None:
        self.health.error = self._note
        if not self.health.available:
            self.health.available = True
            self._context.report_availability(self.name, None, True)
        self._wake.set()

    def _lost(self, exc: HueError) -> None:
        log.warning("%s: %s", self.name, exc)
        self._set_unavailable(str(exc))
        self._fail_all(HueUnreachable(f"{self.name}: {exc}"))
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(), name=f"{self.name}-recover")

    def _set_fatal(self, exc: HueError) -> None:
        self._fatal = HueUnauthorized(f"{self.name}: {exc}")
        log.error("%s", self._fatal)
        self._set_unavailable(str(self._fatal))
        self._fail_all(self._fatal)

    async def _recover(self) -> None:
        delay = self._opts.retry_initial
        while True:
            await asyncio.sleep(delay)
            try:
                if self._bridge is None and not await self._connect():
                    return
                await self._discover()
            except HueUnauthorized as exc:
                self._set_fatal(exc)
                return
            except HueError as exc:
                log.info("%s: still unreachable (%s); next try in %.1f s", self.name, exc, delay)
                delay = min(delay * 2, self._opts.retry_max)
                continue
            self._set_available()
            return

    # -- key and discovery ---------------------------------------------------------------------

    def _read_key(self) -> str | None:
        if self._opts.username:
            return self._opts.username
        return read_key(self._opts.key_file, self._opts.host)

    async def _connect(self) -> bool:
        """Build the phue bridge with the current key; False (and fatal) when there is none."""
        key = self._read_key()
        if key is None:
            self._set_fatal(
                HueUnauthorized(
                    f"no key for the Hue bridge at {self._opts.host} in {self._opts.key_file}; "
                    f"press the bridge's link button and run "
                    f"`sessionctl hue pair --host {self._opts.host}`"
                )
            )
            return False
        self._key = key
        state_dir = self._context.state_dir
        self._bridge = await self._call(
            lambda: HueBridge(self._opts.host, key, timeout=self._opts.timeout, state_dir=state_dir)
        )
        return True

    async def _retry_fatal(self) -> None:
        """After `sessionctl hue pair` wrote a new key, pick it up without a restart."""
        key = self._read_key()
        if key is None or key == self._key:
            return
        self._fatal = None
        if not await self._connect():
            return
        try:
            await self._discover()
        except HueUnauthorized as exc:
            self._set_fatal(exc)
        except HueError as exc:
            self._lost(exc)
        else:
            self._set_available()

    async def _discover(self) -> None:
        """Learn each lamp's colour range and power, and which bridge groups we may use."""
        bridge = self._bridge
        assert bridge is not None
        lights = await self._call(bridge.get_light)
        groups = await self._call(bridge.get_group) if self._opts.groups != "off" else {}
        self._learn_lamps(lights if isinstance(lights, dict) else {})
        self._learn_groups(groups if isinstance(groups, dict) else {})

    def _learn_lamps(self, lights: Mapping[str, Any]) -> None:
        missing = []
        for device, light_id in self._opts.lights.items():
            info = lights.get(str(light_id))
            if not isinstance(info, dict):
                missing.append(f"{device} (light {light_id})")
                self._mark_offline(device, True)
                continue
            self._lamps[device] = lamp_from_bridge(light_id, info)
            state = info.get("state") or {}
            self._known_on[device] = state.get("on") if isinstance(state.get("on"), bool) else None
            self._mark_offline(device, state.get("reachable") is False)
        self._note = None
        if missing:
            self._note = f"not on the bridge at {self._opts.host}: {', '.join(missing)}"
        self.health.error = self._note

    def _mark_offline(self, device: str, offline: bool) -> None:
        if offline == (device in self.health.devices_offline):
            return
        if offline:
            self.health.devices_offline.add(device)
        else:
            self.health.devices_offline.discard(device)
        self._context.report_availability(self.name, device, not offline)

    def _learn_groups(self, groups: Mapping[str, Any]) -> None:
        by_id = {lamp.light_id: device for device, lamp in self._lamps.items()}
        usable: dict[int, frozenset[str]] = {}
        for raw_id, info in groups.items():
            if not isinstance(info, dict) or not str(raw_id).isdigit():
                continue
            group_id = int(raw_id)
            if self._opts.groups != "auto" and group_id not in self._opts.groups:
                continue
            members = [by_id.get(int(x)) for x in info.get("lights", []) if str(x).isdigit()]
            if len(members) < 2 or None in members:
                if self._opts.groups != "auto":
                    log.warning(
                        "%s: group %s has lights outside this driver; not using it",
                        self.name,
                        group_id,
                    )
                continue
            usable[group_id] = frozenset(d for d in members if d is not None)
        self._groups = usable
