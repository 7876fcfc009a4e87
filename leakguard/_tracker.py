"""The registry of live sessions: leakguard's only mutable state."""

from __future__ import annotations

import functools
import gc
import sys
import threading
import time
import weakref
from collections import deque
from itertools import count

from . import _stacks
from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Callable, Protocol

    from ._stacks import Stack

    LeakSink = Callable[[list[tuple["Record", str]]], None]
    EventSink = Callable[["Record", str], None]

    class Reader(Protocol):
        """How the tracker reads a library's state: what an integration gives it.

        Declared here so that data flows one way: integrations call the tracker, the tracker
        and the reports only read through this.
        """

        def resources(self, session: Any) -> object:
            """What the record holds strongly to count connections later; never the session."""

        def is_closed(self, session: Any) -> bool:
            """The library's own closed state of a live session."""

        def resources_closed(self, resources: Any) -> bool:
            """Whether the pools show the session closed, once the session itself is gone."""

        def connections(self, resources: Any) -> tuple[int | None, list[str]]:
            """Open pooled connections and their origins; None when the version does not say."""

        def held_at_death(self, resources: Any) -> bool | None:
            """A response's: whether it held a connection as it died; None: cannot tell."""

    class SiteCounts(Protocol):
        """Per-creation-site open counts (_sites.Sites), updated with the registry."""

        def opened(self, record: Record) -> Any:
            """Count a new record; a site to warn about (max-open), else None."""

        def closed(self, record: Record) -> None:
            """A record left the registry."""

        def reopened(self, record: Record) -> None:
            """A closed record is back in the registry (used after close)."""

        def warn(self, site: Any, record: Record) -> None:
            """The max-open warning, outside the tracker's lock."""

        def reset(self) -> None:
            """Forget every count (after fork)."""


class Record(weakref.ref):  # type: ignore[type-arg]
    """What leakguard knows of one tracked session: itself a weak reference to the session.

    One object per session instead of a record plus a weakref plus a callback closure; the
    callback is the tracker's own bound method and never sees the session.
    """

    __slots__ = ("close_called", "closed", "closed_at", "created", "held", "integration", "key",
                 "kind",
                 "last_code", "last_lasti", "last_time", "origin", "owner", "resources", "seq",
                 "site", "stack", "task", "thread", "type_name", "uses")

    def __new__(cls, session: object, callback: Callable[[Record], None], *args: object,
                ) -> Record:
        return super().__new__(cls, session, callback)

    def __init__(self, session: object, callback: Callable[[Record], None], key: int,
                 seq: int, integration: Reader, type_name: str, stack: Stack,
                 resources: object) -> None:
        super().__init__(session, callback)  # type: ignore[call-arg]
        self.key = key
        self.seq = seq
        self.integration = integration
        self.type_name = type_name
        self.stack = stack
        self.resources = resources  # the pools, never the session: counted at report time
        self.created = time.monotonic()
        self.thread = threading.current_thread().name
        self.task = _task_name()
        self.closed = False
        # an async close() was called: whether it ran is the library's state, read later
        self.close_called: bool | weakref.ref[Any] = False
        self.owner: object = None  # who owes the close (the pytest plugin: a test or fixture)
        self.kind = SESSION
        # requests made (sessions): how many, and the user's frame of the last one
        self.uses = 0
        self.last_code: CodeType | None = None
        self.last_lasti = -1
        self.last_time = 0.0
        # (code, offset, monotonic time) of the close; kept while a closed session lives
        self.closed_at: tuple[CodeType, int, float] | None = None
        # responses: whether it held a connection when it died, read before its finalizer
        # (None: not known yet); and the origin it holds a connection to
        self.held: bool | None = None
        self.origin = ""
        self.site: Any = None  # its creation site's counts (a _sites.Site)

    def age(self) -> float:
        """Seconds since the session was created."""
        return time.monotonic() - self.created


SESSION = "session"
RESPONSE = "response"


def _task_name() -> str | None:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    loop = asyncio._get_running_loop()  # cheap, and no exception when there is none
    if loop is None:
        return None
    task = asyncio.current_task(loop)
    return None if task is None else str(task.get_name())


class Tracker:
    """Live records keyed by id(session); weak references and a deferred verdict queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on_death = self._collected  # one bound method for every record's callback
        self._live: dict[int, Record] = {}
        # closed sessions of libraries that can be used after close: kept until they die
        self._closed: dict[int, Record] = {}
        self._dead: deque[int] = deque()  # ids whose weak reference died, verdict pending
        # dead sessions whose async close is yet to run (a task an SDK's __del__ scheduled):
        # judged when that coroutine ends (_close_ended)
        self._closing: dict[int, Record] = {}
        self._ended: deque[Record] = deque()
        self._seq = count(1)
        self._in_gc = False
        self.done = False  # set once the exit report ran: later deaths are not reported again
        self.on_leaks: LeakSink | None = None
        self.on_event: EventSink | None = None
        self.stack_depth = 32
        self.owner: object = None  # given to every new record (see Record.owner)
        # picks the owner from the creation stack instead (the pytest plugin's factories)
        self.owner_of: Callable[[Stack], object] | None = None
        # owner -> its live records by seq: a verdict for one owner touches only its own
        self._owned: dict[object, dict[int, Record]] = {}
        self.sites: SiteCounts | None = None  # per-site open counts (census, max-open)

    # -- lifecycle of the tracker --------------------------------------------------------

    def start(self) -> None:
        """Listen to garbage collections so that cyclic garbage is judged after its finalizers."""
        self.done = False
        if self._gc_callback not in gc.callbacks:
            gc.callbacks.append(self._gc_callback)

    def stop(self) -> None:
        """Stop tracking and forget every record."""
        if self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)
        with self._lock:
            self._live.clear()
            self._closed.clear()
            self._dead.clear()
            self._owned.clear()
            self._closing.clear()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and an empty registry (the parent reports its own)."""
        self._lock = threading.Lock()
        self._live = {}
        self._closed = {}
        self._dead = deque()
        self._owned = {}
        if self.sites is not None:
            self.sites.reset()
        self._closing = {}

    # -- the hot path ----------------------------------------------------------------------

    def track(self, session: object, integration: Reader, type_name: str,
              stack: Stack, kind: str = SESSION, resources: object = None) -> Record | None:
        """Start tracking a freshly constructed session (or a response holding a connection)."""
        key = id(session)
        if kind is SESSION:
            resources = integration.resources(session)
        record = Record(session, self._on_death, key, 0, integration,
                        type_name, stack, resources)
        record.kind = kind
        owner = self.owner if self.owner_of is None else self.owner_of(stack)
        record.owner = owner
        with self._lock:
            old = self._live.get(key)
            if old is not None:
                if old() is session:
                    return None  # __init__ ran twice on one object: still one session
                del self._live[key]
                self._unown(old)
            # numbered under the lock and appended: _live stays in creation order (since())
            record.seq = next(self._seq)
            self._live[key] = record
            if owner is not None:
                self._owned.setdefault(owner, {})[record.seq] = record
            sites = self.sites
            crowded = sites.opened(record) if sites is not None else None
        if crowded is not None and sites is not None:
            sites.warn(crowded, record)
        if old is not None:  # an earlier session at this address died unjudged: judge it now
            self._report_if_open([old])
        if self.on_event is not None:
            self.on_event(record, "created")
        return record

    def close(self, session: object, closed_at: tuple[CodeType, int, float] | None = None,
              ) -> None:
        """The session is closed: forget its record (kept aside if `closed_at` is given).

        A session that can be used after its close keeps its record, with where and when it
        was closed, until it dies: a later request finds it there (see `reopen`).
        """
        key = id(session)
        if key not in self._live:
            return  # not tracked (made before leakguard, or owned by another session)
        with self._lock:
            record = self._live.get(key)
            if record is None:
                return
            alive = record()
            # a dead reference with the object still closable means a finalizer of cyclic
            # garbage is closing it after our callback ran: that is this session
            if alive is not session and alive is not None:
                return
            del self._live[key]
            self._unown(record)
            record.closed = True
            if closed_at is not None and alive is not None:
                record.closed_at = closed_at
                self._closed[key] = record
        if self.on_event is not None:
            self.on_event(record, "closed")

    def close_called(self, session: object, closer: object = None) -> None:
        """An async close was called (a coroutine made): judged later by the library's state."""
        record = self._live.get(id(session))
        # a dead reference: a finalizer of cyclic garbage is closing it after our callback
        # ran (an SDK's __del__ scheduling aclose()): that is this session, as in close()
        if record is not None and record() in (session, None):
            try:  # the coroutine, weakly: still to run when the session dies, it is waited for
                record.close_called = weakref.ref(closer)
            except TypeError:
                record.close_called = True

    def closed_record(self, session: object) -> Record | None:
        """The record of a closed session that is still alive (for used-after-close)."""
        record = self._closed.get(id(session))
        if record is None or record() is not session:
            return None
        return record

    def reopen(self, record: Record) -> bool:
        """A closed session was used again: it counts as open from now on."""
        with self._lock:
            if self._closed.get(record.key) is not record or record() is None:
                return False
            del self._closed[record.key]
            record.closed = False
            # renumbered: _live stays in creation order, and the reopening counts as new
            record.seq = next(self._seq)
            self._live[record.key] = record
            if record.owner is not None:
                self._owned.setdefault(record.owner, {})[record.seq] = record
            if self.sites is not None:
                self.sites.reopened(record)
        return True

    # -- deaths and verdicts --------------------------------------------------------------

    def _collected(self, record: Record) -> None:
        # Weak-reference callback: no lock, no session; in a collection wait for its end so
        # that finalizers (an owner's __del__ closing its session) run before the verdict.
        if record.closed:
            if self._closed.get(record.key) is record:
                self._closed.pop(record.key, None)
            return
        if self.done:
            return
        if record.kind is RESPONSE and record.held is None:
            # a response's state is readable only now, while its attributes still live
            with guard(f"reading the state of a {record.type_name}"):
                record.held = record.integration.held_at_death(record.resources)
        self._dead.append(record.key)
        if not self._in_gc:
            self.drain()

    def _gc_callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._in_gc = True
            return
        self._in_gc = False
        if self._dead and not self.done:
            self.drain()
        if self._ended and not self.done:
            self._judge_ended()

    def drain(self) -> None:
        """Judge every session that died, unless this thread is already inside the tracker."""
        while self._dead:
            if not self._lock.acquire(blocking=False):
                return  # the holder drains on release (below), even if it is this thread
            dead: list[Record] = []
            try:
                while self._dead:
                    key = self._dead.popleft()
                    record = self._live.get(key)
                    if record is None or record() is not None:
                        continue
                    del self._live[key]
                    self._unown(record)
                    dead.append(record)
            finally:
                self._lock.release()
            self._report_if_open(dead)

    def _report_if_open(self, dead: list[Record]) -> None:
        leaks = [(r, "gc") for r in dead
                 if not self._judged_closed(r) and not self._close_pending(r)]
        if leaks and self.on_leaks is not None:
            with guard("reporting a leak"):
                self.on_leaks(leaks)

    def _judged_closed(self, record: Record) -> bool:
        if record.closed:
            return True
        if record.held is not None:
            return not record.held
        with guard(f"reading the state of a {record.type_name}"):
            if record.integration.resources_closed(record.resources):
                return True
            if record.close_called:
                # its async close was called, and it died: that close ran if the pools it
                # left behind hold no open connection (a coroutine never awaited left them)
                count, _ = record.integration.connections(record.resources)
                return not count
        return False

    def _close_pending(self, record: Record) -> bool:
        # Died with open pools while its close coroutine lives on unfinished: a task will run
        # it (SDKs' __del__ does create_task(self.aclose())). Judged once the coroutine ends.
        ref = record.close_called
        closer = ref() if isinstance(ref, weakref.ref) else None
        if getattr(closer, "cr_frame", None) is None:  # none, gone, or already finished
            return False
        record.close_called = weakref.ref(closer, functools.partial(self._close_ended, record.key))
        self._closing[record.key] = record
        return True

    def _close_ended(self, key: int, _closer: object) -> None:
        record = self._closing.pop(key, None)
        if record is None or self.done:
            return
        record.close_called = True  # ran, or dropped unawaited: the pools say which
        self._ended.append(record)
        if not self._in_gc:
            self._judge_ended()

    def _judge_ended(self) -> None:
        ended = []
        while self._ended:
            ended.append(self._ended.popleft())
        self._report_if_open(ended)

    # -- queries ---------------------------------------------------------------------------

    def collect_open(self, mark_done: bool = False) -> list[tuple[Record, str]]:
        """Every tracked session still open now (judged by the library's own state)."""
        gc_leaks: list[tuple[Record, str]] = []
        open_now: list[tuple[Record, str]] = []
        self.drain()
        with self._lock:
            records = list(self._live.values())
            if mark_done:
                self.done = True
                self._live.clear()
                self._owned.clear()
                # died while their close was pending, still pending: judged as they are now
                records.extend(self._closing.values())
                self._closing.clear()
        for record in records:
            session = record()
            if session is None:
                if not self._judged_closed(record):
                    gc_leaks.append((record, "gc"))
                continue
            closed = False
            with guard(f"reading the state of a {record.type_name}"):
                closed = record.integration.is_closed(session)
                if not closed and record.close_called:
                    # a library without a closed state: its async close ran if its pools
                    # hold no open connection (as for a session that died, _judged_closed)
                    count, _ = record.integration.connections(record.resources)
                    closed = not count
            del session
            if not closed:
                open_now.append((record, "exit"))
        return gc_leaks + open_now

    def forget(self, records: list[Record]) -> None:
        """Stop tracking these records (their leak was reported another way)."""
        with self._lock:
            for record in records:
                if self._live.get(record.key) is record:
                    del self._live[record.key]
                    self._unown(record)

    def _unown(self, record: Record) -> None:
        # with the lock held: the record is no longer live (called once as it leaves _live)
        if self.sites is not None:
            self.sites.closed(record)
        owned = self._owned.get(record.owner) if record.owner is not None else None
        if owned is not None:
            owned.pop(record.seq, None)

    def owned(self, owner: object) -> list[Record]:
        """The live records of one owner (in creation order): cost in its records only."""
        with self._lock:
            found = self._owned.get(owner)
            return list(found.values()) if found else []

    def release(self, owner: object) -> None:
        """Forget an owner once judged; its records that are still live stay tracked."""
        with self._lock:
            found = self._owned.pop(owner, None)
            for record in (found or {}).values():
                record.owner = None

    def since(self, seq: int) -> list[Record]:
        """The live records made after seq_mark() returned `seq`: cost in those records only."""
        found: list[Record] = []
        with self._lock:
            for record in reversed(self._live.values()):
                if record.seq <= seq:
                    break
                found.append(record)
        found.reverse()
        return found

    def seq_mark(self) -> int:
        """A sequence number that every record made from now on is above."""
        with self._lock:
            n = next(self._seq)
        return n

    def live_records(self) -> list[Record]:
        """A snapshot of the records tracked now (open, or dead with the verdict pending)."""
        with self._lock:
            return list(self._live.values())

    def __len__(self) -> int:
        return len(self._live)


TRACKER = Tracker()


def capture_stack(skip: int = 1, instance: object = None) -> Stack:
    """The creation stack of the session being constructed by our caller's caller.

    `instance`: that session, so that its own constructor chain is marked (see _stacks.site).
    """
    return _stacks.capture(TRACKER.stack_depth, skip + 1, instance)
