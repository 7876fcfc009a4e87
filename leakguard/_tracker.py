"""The registry of live sessions: leakguard's only mutable state."""

from __future__ import annotations

import gc
import threading
import weakref
from collections import deque
from itertools import count

from . import _stacks
from ._owners import Owners
from ._record import RESPONSE, SESSION, Record, new_record
from ._verdicts import Verdicts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Callable, Protocol

    from ._record import Reader
    from ._stacks import Stack

    EventSink = Callable[["Record", str], None]

    class SiteCounts(Protocol):
        """Per-creation-site open counts (_sites.Sites), updated with the registry."""

        # id(stack) -> (stack, type name, site): read inline on a response's hot path
        _by_stack: dict[int, tuple[Stack, str, Any]]

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

__all__ = ["RESPONSE", "SESSION", "TRACKER", "Record", "Tracker", "capture_stack"]


class Tracker(Verdicts):
    """Live records keyed by id(session), weakly; their deaths judged by Verdicts."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._on_death = self._collected  # one bound method for every record's callback
        self._on_response_death = self._response_died  # a streamed response's (track_from)
        self._live: dict[int, Record] = {}
        # closed sessions of libraries that can be used after close: kept until they die
        self._closed: dict[int, Record] = {}
        self._seq = count(1)
        self.on_event: EventSink | None = None
        self.stack_depth = 32
        self.owner: object = None  # given to every new record (see Record.owner)
        # picks the owner from the creation stack instead (the pytest plugin's factories)
        self.owner_of: Callable[[Stack], object] | None = None
        self._owners = Owners()  # owner -> its live records (under the lock)
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
            self._owners.clear()
            self._closing.clear()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and an empty registry (the parent reports its own)."""
        self._lock = threading.Lock()
        self._live = {}
        self._closed = {}
        self._dead = deque()
        self._owners = Owners()
        if self.sites is not None:
            self.sites.reset()
        self._closing = {}

    # -- the hot path ----------------------------------------------------------------------

    def track(self, session: object, integration: Reader, type_name: str,
              stack: Stack, kind: str = SESSION, resources: object = None,
              origin: str = "") -> Record | None:
        """Start tracking a freshly constructed session (or a response holding a connection
        to `origin`)."""
        key = id(session)
        if kind is SESSION:
            resources = integration.resources(session)
        owner = self.owner if self.owner_of is None else self.owner_of(stack)
        callback = self._on_response_death if kind is RESPONSE else self._on_death
        record = new_record(session, callback, key, integration, type_name, stack,
                            resources, kind, owner, origin)
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
                self._owners.add(record)
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
            self._owners.add(record)
            if self.sites is not None:
                self.sites.reopened(record)
        return True

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
                self._owners.clear()
                # died while their close was pending, still pending: judged as they are now
                records.extend(self._closing.values())
                self._closing.clear()
        for record in records:
            session = record()
            if session is None:
                if not record.judged_closed():
                    gc_leaks.append((record, "gc"))
                continue
            still_open = record.open_now(session)
            del session
            if still_open:
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
        site = record.site
        if site is not None:
            site.open -= 1  # Sites.closed(), inline: once per record on the hot path
        if record.owner is not None:
            self._owners.drop(record)

    def owned(self, owner: object) -> list[Record]:
        """The live records of one owner (in creation order): cost in its records only."""
        with self._lock:
            return self._owners.of(owner)

    def release(self, owner: object) -> None:
        """Forget an owner once judged; its records that are still live stay tracked."""
        with self._lock:
            self._owners.release(owner)

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
