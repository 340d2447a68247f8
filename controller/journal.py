"""The durable journal: an append-only SQLite event log that is the rooms' source of truth.

Every accepted or refused command and every state transition is appended, in one fsync'd
transaction together with the room's latest :meth:`Session.snapshot`, *before* any driver is
told (DESIGN.md §1.3). A restarted process rebuilds its sessions from the snapshots
(:mod:`controller.resume`); the event log is the audit trail (``sessionctl export``)::

    journal = Journal.open(Path("state/journal.sqlite3"), clock=SystemClock())
    site = build_site(config, clock=clock, recorder=journal)   # Room awaits record_async(...)
    journal.fault            # None, or why nothing can be written (read-only, disk full)
    journal.notices          # loud messages about files moved aside at open
    journal.rows(room="room-1", since=datetime(2026, 1, 1, tzinfo=UTC))
    journal.close()

``serve`` uses :func:`open_journal` and :func:`resume_site`. Storage rules (testing.md §6-7):
WAL with ``synchronous=FULL``, explicit ``BEGIN IMMEDIATE``, ``PRAGMA quick_check`` at open. A
corrupt, truncated, empty, foreign or newer-version file is moved aside with a timestamp and a
fresh journal started. Rows hold no patient data: a session is an opaque token (DESIGN §1.8).

Threads: the SQLite connection lives in one writer thread owned by the journal, so an fsync (tens
of ms here, far more on an SD card) never stalls the event loop, and with it every other room,
the web server and MQTT. Rows and the session snapshot are built on the caller's thread (a
Session is not thread-safe) and the ready batch is queued; the writer commits batches in the
order they were queued. :meth:`Journal.record_async` returns at once with a future that
completes when the batch is durable (the room awaits it before telling any driver);
:meth:`Journal.record`, :meth:`Journal.write`, the reads and :meth:`Journal.close` block until
the writer has done them and everything queued before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from controller.clock import Clock, SystemClock
from controller.commands import Command, Outcome
from controller.events import Event

if TYPE_CHECKING:
    from controller.config import Config
    from controller.session import Session
    from controller.site import Site

log = logging.getLogger("sessionctl.journal")

T = TypeVar("T")

SCHEMA_VERSION = 1
APPLICATION_ID = 0x5345534E  # "SESN": marks a file as ours, so a foreign database is refused
CLOCK_STEP_LIMIT = 2.0  # seconds of disagreement between wall and monotonic deltas
PRUNE_EVERY = 86400.0

_SCHEMA = """
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    session  TEXT,
    room     TEXT,
    kind     TEXT NOT NULL,
    offset_s REAL,
    mono     REAL NOT NULL,
    wall_ns  INTEGER NOT NULL,
    boot_id  TEXT NOT NULL,
    synced   INTEGER NOT NULL,
    actor    TEXT,
    cmd_id   TEXT,
    payload  TEXT NOT NULL
);
CREATE INDEX events_wall ON events (wall_ns);
CREATE INDEX events_room ON events (room, seq);
CREATE TABLE snapshots (
    room     TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL,
    session  TEXT,
    state    TEXT NOT NULL,
    mono     REAL NOT NULL,
    wall_ns  INTEGER NOT NULL,
    boot_id  TEXT NOT NULL,
    synced   INTEGER NOT NULL,
    data     TEXT NOT NULL
);
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JournalError(Exception):
    """The journal cannot take writes; ``str()`` says why, fit for room health."""


class Recordable(Protocol):
    """What the journal needs from a room (``controller.room.Room`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def session(self) -> Session: ...


@dataclass(frozen=True)
class Stamp:
    """When something was written: monotonic and UTC wall readings, boot and sync state."""

    mono: float
    wall_ns: int
    boot_id: str
    synced: bool

    @property
    def wall(self) -> datetime:
        return wall_from_ns(self.wall_ns)


@dataclass(frozen=True)
class Saved:
    """A room's latest journalled snapshot and when it was taken."""

    room: str
    seq: int
    state: str
    stamp: Stamp
    data: dict[str, Any]


def wall_ns(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def wall_from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _problem_of(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


Row = tuple[str | None, str | None, str, float | None, str | None, str | None, str]
"""One events row before its stamp: session, room, kind, offset, actor, cmd_id, payload JSON."""


@dataclass(frozen=True)
class _Batch:
    """One transaction, ready to write: built on the caller's thread (where the session lives),
    committed on the writer thread."""

    stamp: Stamp
    rows: list[Row]
    snapshot: tuple[str, str | None, str, str] | None  # room, session, state, JSON

    def rooms(self) -> set[str]:
        out = {str(row[1]) for row in self.rows if row[1] is not None}
        if self.snapshot is not None:
            out.add(self.snapshot[0])
        return out


class Journal:
    """One SQLite connection, opened and used only by the journal's writer thread."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock,
        retention_days: int = 2190,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.retention_days = retention_days
        self.fault: str | None = None
        self.notices: list[str] = []
        self.moved_aside: list[Path] = []
        self._db: sqlite3.Connection | None = None
        self._last: Stamp | None = None
        self._last_prune: float | None = None
        self._failed_rooms: set[str] = set()
        # Runs on the writer thread just before every COMMIT: tests make the disk slow with it.
        self._before_commit = before_commit
        # One worker: batches are committed one at a time, in the order they were queued.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        self._writer_thread: int | None = None
        self._closed = False

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Clock,
        retention_days: int = 2190,
        before_commit: Callable[[], None] | None = None,
    ) -> Journal:
        """Open (or create) the journal; never raises for storage trouble, see ``fault``."""
        journal = cls(path, clock=clock, retention_days=retention_days, before_commit=before_commit)
        journal._call(journal._open)
        global _current
        _current = journal
        return journal

    def _open(self) -> None:
        self._writer_thread = threading.get_ident()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._set_fault(f"cannot create {self.path.parent}: {exc.strerror}")
            return
        if self.path.exists():
            problem = self._inspect()
            if problem is not None:
                self._move_aside(problem)
                if self.fault is not None:
                    return
        if not self.path.exists():
            try:
                self._create()
            except (OSError, sqlite3.Error) as exc:
                self._set_fault(f"cannot create the journal {self.path}: {_problem_of(exc)}")
                return
        if self._db is None:
            self._connect()
        if self._db is not None and self.fault is None:
            self._last = self._last_stamp()
            self._prune(self.stamp())

    def _inspect(self) -> str | None:
        """Why the existing file cannot be used as our journal, or None (then it is open)."""
        try:
            if self.path.stat().st_size == 0:
                return "the journal file is empty"
        except OSError as exc:
            return f"cannot read the journal file: {exc.strerror}"
        try:
            db = self._readable_connection()
        except sqlite3.Error as exc:
            return f"cannot open the journal: {_problem_of(exc)}"
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
            verdict = "; ".join(str(r[0]) for r in rows[:5])
            if verdict != "ok":
                db.close()
                return f"quick_check failed: {verdict}"
            app = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            db.close()
            return f"the journal is damaged: {_problem_of(exc)}"
        if app != APPLICATION_ID:
            db.close()
            return f"not a sessionctl journal (application_id {app:#x})"
        if version > SCHEMA_VERSION:
            db.close()
            return (
                f"written by a newer sessionctl (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        if version != SCHEMA_VERSION:
            db.close()
            return f"unknown journal schema {version}"
        self._db = db
        self._configure(db)
        return None

    def _connection(self, mode: str) -> sqlite3.Connection:
        uri = f"file:{self.path}?mode={mode}"
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), nothing implicit.
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        db.execute("PRAGMA schema_version").fetchone()  # fails here for a non-database
        return db

    def _readable_connection(self) -> sqlite3.Connection:
        """Read-write if possible; else read-only, and on a read-only filesystem (where a WAL
        database cannot create its shared-memory file) as an immutable file."""
        error: sqlite3.Error | None = None
        for mode in ("rw", "ro", "ro&immutable=1"):
            try:
                return self._connection(mode)
            except sqlite3.OperationalError as exc:  # cannot open; a non-database raises
                error = exc
        assert error is not None
        raise error

    def _configure(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = FULL")
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self._set_fault(f"the journal cannot be written: {_problem_of(exc)}")

    def _create(self) -> None:
        """Build a fresh journal beside the target and rename it in, so a crash mid-way never
        leaves an empty or half-made file under the real name."""
        tmp = self.path.with_name(self.path.name + ".new")
        for leftover in (tmp, Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA}"
                f"PRAGMA application_id = {APPLICATION_ID};"
                f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        finally:
            db.close()
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def _connect(self) -> None:
        try:
            db = self._readable_connection()
        except sqlite3.Error as exc:
            self._set_fault(f"cannot open the journal {self.path}: {_problem_of(exc)}")
            return
        self._db = db
        self._configure(db)

    def _move_aside(self, problem: str) -> None:
        stamp = self.clock.wall().strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.{stamp}.bad")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{stamp}-{n}.bad")
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{target}{suffix}"))
        except OSError as exc:
            self._set_fault(f"{problem}; and it cannot be moved aside: {exc.strerror}")
            return
        message = (
            f"journal {self.path.name}: {problem}; moved aside to {target.name} and a fresh "
            "journal started; sessions that were running were not resumed"
        )
        log.error("%s", message)
        self.notices.append(message)
        self.moved_aside.append(target)

    def _set_fault(self, message: str) -> None:
        log.error("journal: %s", message)
        self.fault = message

    def close(self) -> None:
        """Write everything already queued, close the connection and join the writer thread."""
        if self._closed:
            return
        self._writer.submit(self._close_db)
        self._closed = True
        self._writer.shutdown(wait=True)

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    @property
    def writable(self) -> bool:
        return self._db is not None and self.fault is None and not self._closed

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the writer thread after everything queued before it, and wait."""
        if self._closed or threading.get_ident() == self._writer_thread:
            return fn(*args)  # closed: ``_db`` is None and fn answers without SQLite
        return self._writer.submit(fn, *args).result()

    def with_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the connection on the writer thread (maintenance, tests)::

        pages = journal.with_connection(lambda db: db.execute("PRAGMA page_count").fetchone())
        """

        def run() -> T:
            if self._db is None:
                raise JournalError("the journal is closed")
            return fn(self._db)

        return self._call(run)

    # -- writing -----------------------------------------------------------------------

    def stamp(self) -> Stamp:
        return Stamp(
            self.clock.monotonic(),
            wall_ns(self.clock.wall()),
            self.clock.boot_id(),
            self.clock.synchronized(),
        )

    def record_async(
        self,
        room: Recordable,
        events: Sequence[Event],
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
    ) -> asyncio.Future[None]:
        """The :class:`controller.room.QueuedRecorder` hook. Builds the rows and the room's
        snapshot now, queues them behind earlier writes and returns a future that completes
        once they are durable; the event loop runs on during the fsync::

            await asyncio.shield(journal.record_async(room, events, command=cmd))

        The future fails with :class:`JournalError` (or ``sqlite3.Error``) if nothing could be
        written; the room then refuses new sessions until a later write succeeds. Cancelling
        it may drop the write, hence the shield.
        """
        batch = self._batch(room, events, command, outcome, snapshot=True)
        loop = asyncio.get_running_loop()
        if self._closed:
            self._failed(batch)
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(JournalError("the journal is closed"))
            return failed
        done = loop.run_in_executor(self._writer, self._commit, batch)
        done.add_done_callback(lambda f: self._settled(room, batch, f))
        return done

    def record(
        self,
        room: Recordable,
        events: Sequence[Event],
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """:meth:`record_async` for callers without an event loop: blocks until durable."""
        self.write(room, events, command=command, outcome=outcome, snapshot=True)

    def write(
        self,
        room: Recordable,
        events: Sequence[Event],
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
        snapshot: bool = True,
    ) -> None:
        """Append (with the room's snapshot unless ``snapshot=False``); blocks until durable.

        Raises :class:`JournalError` (or ``sqlite3.Error``) if nothing could be written.
        """
        batch = self._batch(room, events, command, outcome, snapshot)
        try:
            self._call(self._commit, batch)
        except Exception:
            self._failed(batch)
            raise
        self._written(room)

    def append(
        self,
        room: str | None,
        events: Sequence[Event],
        *,
        session: str | None = None,
        offset: float | None = None,
        wait: bool = True,
    ) -> None:
        """Append events that belong to no command and move no snapshot (site events). With
        ``wait=False`` they are queued and this returns at once; a failure is only logged."""
        rows: list[Row] = [
            (session, room, e.kind, offset, e.data.get("actor"), None, _dumps(e.data))
            for e in events
        ]
        batch = _Batch(self.stamp(), rows, None)
        if wait or self._closed:
            try:
                self._call(self._commit, batch)
            except Exception:
                self._failed(batch)
                raise
            return
        self._writer.submit(self._commit, batch).add_done_callback(_log_failure)

    def _batch(
        self,
        room: Recordable,
        events: Sequence[Event],
        command: Command | None,
        outcome: Outcome | None,
        snapshot: bool,
    ) -> _Batch:
        """Everything the transaction needs, read from the session now, on this thread."""
        stamp = self.stamp()
        session = room.session
        token = session.token
        offset = session.offset(stamp.mono) if session.run is not None else None
        rows: list[Row] = []
        if command is not None:
            rows.append(self._command_row(room.id, token, offset, command, outcome))
        cmd_id = _cmd_id(command)
        for event in events:
            actor = event.data.get("actor") or (command.actor if command is not None else None)
            rows.append((token, room.id, event.kind, offset, actor, cmd_id, _dumps(event.data)))
        snap = None
        if snapshot:
            snap = (room.id, token, session.state.value, _dumps(session.snapshot(stamp.mono)))
        return _Batch(stamp, rows, snap)

    def _settled(self, room: Recordable, batch: _Batch, done: asyncio.Future[None]) -> None:
        if done.cancelled():
            return
        if done.exception() is not None:
            self._failed(batch)
        else:
            self._written(room)

    def _failed(self, batch: _Batch) -> None:
        self._failed_rooms.update(batch.rooms())

    def _written(self, room: Recordable) -> None:
        if room.id in self._failed_rooms:
            self._failed_rooms.discard(room.id)
            note = getattr(room, "note", None)
            if note is not None and self.fault is None:
                note("journal", None)

    def _command_row(
        self,
        room: str,
        token: str | None,
        offset: float | None,
        command: Command,
        outcome: Outcome | None,
    ) -> Row:
        accepted = outcome is None or outcome.accepted
        payload: dict[str, Any] = {"verb": command.verb, "args": dict(command.args)}
        if outcome is not None:
            payload.update(
                accepted=outcome.accepted, reason=outcome.reason, duplicate=outcome.duplicate
            )
        kind = "command" if accepted else "command_refused"
        return (token, room, kind, offset, command.actor, command.cmd_id, _dumps(payload))

    # -- the writer thread -------------------------------------------------------------

    def _commit(self, batch: _Batch) -> None:
        db = self._db
        if db is None or self.fault is not None:
            raise JournalError(self.fault or "the journal is closed")
        stamp, rows = batch.stamp, batch.rows
        step = self._clock_step(stamp)
        if step is not None:
            rows = [step, *rows]
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self._insert(db, stamp, rows)
            if batch.snapshot is not None:
                room, token, state, data = batch.snapshot
                db.execute(
                    "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (room, seq, token, state, *_stamp_values(stamp), data),
                )
            if self._before_commit is not None:
                self._before_commit()
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        self._last = stamp
        if self._last_prune is None or stamp.mono - self._last_prune >= PRUNE_EVERY:
            self._prune(stamp)

    def _insert(self, db: sqlite3.Connection, stamp: Stamp, rows: list[Row]) -> int:
        seq = 0
        for token, room, kind, offset, actor, cmd_id, payload in rows:
            cur = db.execute(
                "INSERT INTO events (session, room, kind, offset_s, mono, wall_ns, boot_id, "
                "synced, actor, cmd_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    room,
                    kind,
                    None if offset is None else round(offset, 6),
                    *_stamp_values(stamp),
                    actor,
                    cmd_id,
                    payload,
                ),
            )
            seq = int(cur.lastrowid or 0)
        if not rows:
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
            seq = int(row[0] or 0)
        return seq

    def _clock_step(self, stamp: Stamp) -> Row | None:
        """A ``clock_step`` row when the wall clock moved unlike the monotonic clock (NTP)."""
        last = self._last
        if last is None or last.boot_id != stamp.boot_id:
            return None
        wall_delta = (stamp.wall_ns - last.wall_ns) / 1e9
        mono_delta = stamp.mono - last.mono
        step = wall_delta - mono_delta
        if abs(step) <= CLOCK_STEP_LIMIT:
            return None
        log.warning("wall clock stepped by %+.1f s (timelines are unaffected)", step)
        payload = {
            "step": round(step, 3),
            "wall_before": last.wall.isoformat(),
            "wall_after": stamp.wall.isoformat(),
            "synced": stamp.synced,
        }
        return (None, None, "clock_step", None, None, None, _dumps(payload))

    def _last_stamp(self) -> Stamp | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT mono, wall_ns, boot_id, synced FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Stamp(float(row[0]), int(row[1]), str(row[2]), bool(row[3]))

    def prune(self) -> int:
        """Delete audit rows older than the retention period; only with a synchronised clock,
        so a Pi that booted with a wrong date never throws away the trail."""
        return self._call(self._prune, self.stamp())

    def _prune(self, now: Stamp) -> int:
        self._last_prune = now.mono
        if self._db is None or self.fault is not None or not now.synced:
            return 0
        cutoff = wall_ns(now.wall - timedelta(days=self.retention_days))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM events WHERE wall_ns < ?", (cutoff,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            log.error("journal: pruning failed: %s", exc)
            return 0
        if cur.rowcount:
            log.info(
                "journal: pruned %d audit rows older than %d days",
                cur.rowcount,
                self.retention_days,
            )
        return int(cur.rowcount)

    # -- reading (on the writer thread too: a read sees every write queued before it) ---

    def snapshots(self) -> dict[str, Saved]:
        """The latest snapshot of every room that has one."""
        return self._call(self._snapshots)

    def _snapshots(self) -> dict[str, Saved]:
        if self._db is None:
            return {}
        out = {}
        for row in self._db.execute(
            "SELECT room, seq, state, mono, wall_ns, boot_id, synced, data FROM snapshots"
        ):
            stamp = Stamp(float(row[3]), int(row[4]), str(row[5]), bool(row[6]))
            out[str(row[0])] = Saved(
                str(row[0]), int(row[1]), str(row[2]), stamp, json.loads(row[7])
            )
        return out

    def unanswered(self, room: str, kind: str, answers: Sequence[str]) -> dict[str, Any] | None:
        """The payload (and ``session``) of the room's latest ``kind`` row if no row of an
        ``answers`` kind came after it, e.g. a resume prompt staff have not acted on yet."""
        return self._call(self._unanswered, room, kind, answers)

    def _unanswered(self, room: str, kind: str, answers: Sequence[str]) -> dict[str, Any] | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT seq, session, payload FROM events WHERE room = ? AND kind = ? "
            "ORDER BY seq DESC LIMIT 1",
            (room, kind),
        ).fetchone()
        if row is None:
            return None
        marks = ", ".join("?" for _ in answers)
        later = self._db.execute(
            f"SELECT 1 FROM events WHERE room = ? AND seq > ? AND kind IN ({marks}) LIMIT 1",
            (room, row[0], *answers),
        ).fetchone()
        if later is not None:
            return None
        return {**json.loads(row[2]), "session": row[1]}

    def quick_check(self) -> str:
        return self._call(self._quick_check)

    def _quick_check(self) -> str:
        if self._db is None:
            return "closed"
        return "; ".join(str(r[0]) for r in self._db.execute("PRAGMA quick_check"))

    def rows(
        self, *, room: str | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Audit rows, oldest first; with ``room`` only that room's (see :func:`query_rows`)."""
        return iter(self._call(self._rows, room, since))

    def _rows(self, room: str | None, since: datetime | None) -> list[dict[str, Any]]:
        if self._db is None:
            return []
        return list(query_rows(self._db, room=room, since=since))


def _log_failure(done: Future[None]) -> None:
    exc = done.exception()
    if exc is not None:
        log.error("journal: a queued write failed: %s", _problem_of(exc))


def query_rows(
    db: sqlite3.Connection, *, room: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Audit rows, oldest first. With ``room``, only rows of that room: site-level rows (staff
    logins with client addresses and typed ids, clock steps) are in an unfiltered export only,
    so a room's export shows nothing about other rooms' tablets or the site."""
    sql = (
        "SELECT seq, wall_ns, room, session, kind, actor, cmd_id, offset_s, boot_id, synced, "
        "payload FROM events WHERE 1=1"
    )
    params: list[Any] = []
    if room is not None:
        sql += " AND room = ?"
        params.append(room)
    if since is not None:
        sql += " AND wall_ns >= ?"
        params.append(wall_ns(since))
    for r in db.execute(sql + " ORDER BY seq", params):
        yield {
            "seq": r[0],
            "time": wall_from_ns(r[1]).isoformat().replace("+00:00", "Z"),
            "room": r[2],
            "session": r[3],
            "kind": r[4],
            "actor": r[5] or "system",
            "cmd_id": r[6],
            "offset": r[7],
            "boot_id": r[8],
            "clock_synced": bool(r[9]),
            "detail": json.loads(r[10]),
        }


def _cmd_id(command: Command | None) -> str | None:
    return None if command is None else command.cmd_id


def _stamp_values(stamp: Stamp) -> tuple[float, int, str, int]:
    return (stamp.mono, stamp.wall_ns, stamp.boot_id, int(stamp.synced))


def _dumps(data: Mapping[str, Any] | Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- the service's entry points ------------------------------------------------------------

_current: Journal | None = None


def open_journal(config: Config, *, clock: Clock | None = None) -> Journal:
    """Open the site's journal (``site.journal.path``); storage trouble is in ``fault``."""
    settings = config.site.journal
    return Journal.open(
        settings.path, clock=clock or SystemClock(), retention_days=settings.retention_days
    )


async def resume_site(site: Site, journal: Journal) -> None:
    """Restore every room's session from the journal, drive each room to its safe state, then
    resume (see :mod:`controller.resume`)."""
    from controller.resume import resume_site as resume

    await resume(site, journal)


SITE_TEXT_MAX = 64


def audit_site(record: Mapping[str, Any]) -> None:
    """Queue a site-level audit record (a staff login) for the open journal, if any; the login
    answer does not wait for its fsync.

    The row belongs to the site, not a room, even when the tablet is paired with one (the room
    stays in the detail): room exports leave logins out. Text is capped; the web layer has
    already replaced a malformed typed staff id (controller/web/audit.py)."""
    journal = _current
    if journal is None or not journal.writable:
        return
    data = {
        k: v[:SITE_TEXT_MAX] if isinstance(v, str) else v
        for k, v in record.items()
        if k not in ("kind", "wall", "staff", "pin")
    }
    staff = record.get("staff")
    data["actor"] = staff[:SITE_TEXT_MAX] if isinstance(staff, str) else None
    kind = str(record.get("kind", "login"))[:SITE_TEXT_MAX]
    journal.append(None, [Event(kind, data)], wait=False)
