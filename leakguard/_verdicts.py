"""Deaths and verdicts: the queue of dead records, judged once finalizers have run."""

from __future__ import annotations

import functools
import threading
import weakref
from collections import deque

from ._guard import guard, internal_error
from ._record import RESPONSE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._owners import Owners
    from ._record import Record

    LeakSink = Callable[[list[tuple[Record, str]]], None]


class Verdicts:
    """The tracker's half that judges dead records (a base class: it shares the registry)."""

    # the registry's, set by the tracker (see _tracker.Tracker)
    _lock: threading.Lock
    _live: dict[int, Record]
    _closed: dict[int, Record]
    _owners: Owners

    def __init__(self) -> None:
        self._dead: deque[int] = deque()  # ids whose weak reference died, verdict pending
        # dead sessions whose async close is yet to run (a task an SDK's __del__ scheduled):
        # judged when that coroutine ends (_close_ended)
        self._closing: dict[int, Record] = {}
        self._ended: deque[Record] = deque()
        self._in_gc = False
        self.done = False  # set once the exit report ran: later deaths are not reported again
        self.on_leaks: LeakSink | None = None

    def _unown(self, record: Record) -> None:
        raise NotImplementedError  # the registry's (with its lock held)

    def _collected(self, record: Record) -> None:
        # Weak-reference callback: no lock, no session; in a collection wait for its end so
        # that finalizers (an owner's __del__ closing its session) run before the verdict.
        # (a response's record has its own callback, _response_died, which comes here only
        # in a collection, once closed, or once the tracker is done)
        if record.closed:
            if self._closed.get(record.key) is record:
                self._closed.pop(record.key, None)
            return
        if self.done:
            record.resources = None  # nothing more to judge: keep nothing alive
            return
        self._dead.append(record.key)
        if not self._in_gc:
            self.drain()

    def _response_died(self, record: Record) -> None:
        # A response record's weak-reference callback: its common end here, without the
        # kind check (once per streamed response); the rest as any record's (_collected)
        if self._in_gc or record.closed or self.done:
            self._collected(record)
            return
        held = record.held
        if held is None:
            try:
                held = record.integration.held_at_death(record.resources)
            except Exception as exc:  # the guard's rule, without its calls per response
                internal_error(f"reading the state of a {record.type_name}", exc)
        lock = self._lock
        if held is False and lock.acquire(False):
            # a response's state is readable only now, while its attributes still live (in
            # a collection it is read at its end, once finalizers ran: an owner's __del__ or
            # an SDK stream's generator may close it); it let go of its connection, outside
            # a collection (no finalizer to wait for): forgotten now, without the queue
            try:
                live = self._live
                key = record.key
                if live.get(key) is record:
                    del live[key]
                    site = record.site  # _unown(), inline
                    if site is not None:
                        site.open -= 1
                    if record.owner is not None:
                        self._owners.drop(record)
            finally:
                lock.release()
            record.resources = None  # judged: what it read the state through can go now
            return
        record.held = held  # read by its verdict (None: unknown)
        self._dead.append(record.key)
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
                 if not self._revived(r) and not r.judged_closed() and not self._close_pending(r)]
        for r in dead:
            if r.kind is RESPONSE and self._closing.get(r.key) is not r:
                r.resources = None  # judged: what it read the state through can go now
        if leaks and self.on_leaks is not None:
            with guard("reporting a leak"):
                self.on_leaks(leaks)

    def _revived(self, record: Record) -> bool:
        # A response that died in a collection but was brought back by a finalizer (an async
        # generator's: the loop's hook schedules its aclose(), which may close the response)
        # is not dead yet: judged when it really dies, as what the reader waits on goes.
        if record.kind is not RESPONSE or record.held is not None:
            return False
        with guard(f"reading the state of a {record.type_name}"):
            waiter = record.integration.revived(record.resources)
            if waiter is not None:
                record.close_called = weakref.ref(
                    waiter, functools.partial(self._close_ended, record.key))
                self._closing[record.key] = record
                return True
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
        # ran, or dropped unawaited: the pools say which (a revived response: its own state)
        record.close_called = record.kind is not RESPONSE
        self._ended.append(record)
        if not self._in_gc:
            self._judge_ended()

    def _judge_ended(self) -> None:
        ended = []
        while self._ended:
            ended.append(self._ended.popleft())
        self._report_if_open(ended)
