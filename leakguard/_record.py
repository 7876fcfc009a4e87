"""One tracked session or response (a weak reference to it) and how to read its verdict."""

from __future__ import annotations

import sys
import threading
import time
import weakref
from threading import current_thread, get_ident
from time import monotonic

from ._guard import guard, internal_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Callable, Protocol

    from ._stacks import Stack

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

        def revived(self, resources: Any) -> object:
            """A response's, dead in a collection: what to wait on if a finalizer revived it."""

SESSION = "session"
RESPONSE = "response"


class Record(weakref.ref):  # type: ignore[type-arg]
    """What leakguard knows of one tracked session: itself a weak reference to the session.

    One object per session instead of a record plus a weakref plus a callback closure; the
    callback is the tracker's own bound method and never sees the session. Made by
    new_record() (one C call and one Python call, not a Python __new__ and __init__).
    """

    # what both kinds change; a session's own fields and the kind are its subclass's
    __slots__ = ("close_called", "closed", "created", "held", "integration", "key", "origin",
                 "owner", "resources", "seq", "site", "stack", "task", "thread", "type_name")

    key: int
    seq: int
    integration: Reader
    type_name: str
    stack: Stack
    resources: object
    created: float
    thread: str
    task: str | None
    closed: bool
    close_called: bool | weakref.ref[Any]
    owner: object
    kind: str
    uses: int
    last_code: CodeType | None
    last_lasti: int
    last_time: float
    closed_at: tuple[CodeType, int, float] | None
    held: bool | None
    origin: str
    site: Any

    def age(self) -> float:
        """Seconds since the session was created."""
        return time.monotonic() - self.created

    def judged_closed(self) -> bool:
        """Whether the dead session (or response) was closed, by the library's leftover state."""
        if self.closed:
            return True
        if self.held is not None:
            return not self.held
        with guard(f"reading the state of a {self.type_name}"):
            if self.integration.resources_closed(self.resources):
                return True
            if self.close_called:
                # its async close was called, and it died: that close ran if the pools it
                # left behind hold no open connection (a coroutine never awaited left them)
                count, _ = self.integration.connections(self.resources)
                return not count
        return False

    def open_now(self, session: object) -> bool:
        """Whether the live session (this record's referent) is still open."""
        closed = False
        try:  # not `with guard(...)`: census() asks this of every live record
            closed = self.integration.is_closed(session)
            if not closed and self.close_called:
                # a library without a closed state: its async close ran if its pools
                # hold no open connection (as for a session that died, judged_closed)
                count, _ = self.integration.connections(self.resources)
                closed = not count
        except Exception as exc:
            internal_error(f"reading the state of a {self.type_name}", exc)
        return not closed


class _SessionRecord(Record):
    """A session's record: requests made, the last one, the close (used after close)."""

    __slots__ = ("closed_at", "last_code", "last_lasti", "last_time", "uses")
    kind = SESSION


class _ResponseRecord(Record):
    """A response's record: a session's own fields are constants (fewer stores, smaller)."""

    __slots__ = ()
    kind = RESPONSE
    uses = 0
    last_code = None
    last_lasti = -1
    last_time = 0.0
    closed_at = None


# ident -> Thread: the table current_thread() reads, read here without its two Python calls
# (current_thread() and the `name` property)
_THREADS: dict[int, Any] = getattr(threading, "_active", {})
# this thread's Thread object, found once per thread: each record reads its name from it
# (a rename shows), without get_ident() and a lookup in threading's table
_THREAD = threading.local()


def thread_name() -> str:
    """This thread's name; its Thread object kept in _THREAD for the next records."""
    thread: Any = _THREADS.get(get_ident()) or current_thread()
    _THREAD.thread = thread
    return str(thread._name)


def new_record(session: object, callback: Callable[[Record], None], key: int,
               integration: Reader, type_name: str, stack: Stack, resources: object,
               kind: str, owner: object = None, origin: str = "") -> Record:
    """A record of a session (or response) just made: a weak reference to it with `callback`."""
    # the type called: one args tuple, where weakref.ref.__new__ made and sliced one
    record: Record = (_ResponseRecord if kind is RESPONSE else _SessionRecord)(session,
                                                                             callback)
    record.key = key
    record.seq = 0
    record.integration = integration
    record.type_name = type_name
    record.stack = stack
    record.resources = resources  # the pools, never the session: counted at report time
    record.created = monotonic()
    try:
        record.thread = _THREAD.thread._name
    except AttributeError:  # this thread's first record
        record.thread = thread_name()
    # a call only inside a running loop, or once asyncio is imported and not looked at yet
    record.task = task_now() if (_asyncio[0]() is not None if _asyncio
                                 else "asyncio" in sys.modules) else None
    record.closed = False
    # an async close() was called: whether it ran is the library's state, read later
    record.close_called = False
    record.owner = owner  # who owes the close (the pytest plugin: a test or fixture)
    # responses: whether it held a connection when it died, read before its finalizer
    # (None: not known yet); and the origin it holds a connection to
    record.held = None
    record.origin = origin
    record.site = None  # its creation site's counts (a _sites.Site)
    if kind is not RESPONSE:
        # requests made (sessions): how many, and the user's frame of the last one
        record.uses = 0
        record.last_code = None
        record.last_lasti = -1
        record.last_time = 0.0
        # (code, offset, monotonic time) of the close; kept while a closed session lives
        record.closed_at = None
    return record


# asyncio's _get_running_loop and current_task, once asyncio is imported (never imported here)
# asyncio's _get_running_loop and current_task, once asyncio is imported (never imported
# here: a program without asyncio does not get it from leakguard)
_asyncio: list[Any] = []


def task_now() -> str | None:
    """The name of the asyncio task running in this thread; None outside one, or unnamed."""
    if not _asyncio:
        asyncio = sys.modules.get("asyncio")
        if asyncio is None:
            return None
        _asyncio[:] = [asyncio._get_running_loop, asyncio.current_task]
    loop = _asyncio[0]()  # cheap, and no exception when there is none
    task = None if loop is None else _asyncio[1](loop)
    # CPython 3.13.0 names an eager task None once it has awaited: no name
    name = None if task is None else task.get_name()
    return None if name is None else str(name)
