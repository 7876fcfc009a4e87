"""A streamed response's record made and registered in one call: the hot path of responses."""

from __future__ import annotations

import sys
from time import monotonic

from . import _stacks
from ._record import _THREAD, _asyncio, _ResponseRecord, task_now, thread_name
from ._tracker import TRACKER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType

    from ._record import Reader, Record
    from ._stacks import Stack

# id(code) ^ offset -> the stack last captured from that line (checked against the frames)
_LAST: dict[int, Stack] = {}
_LAST_MAX = 4096


def track_from(response: object, reader: Reader, type_name: str, origin: str,
               resources: object, frame: FrameType | None, stack: Stack | None = None,
               ) -> Record | None:
    """Track a response that holds a connection to `origin`; its record (None: tracked).

    Its stack is `stack`, else captured from `frame` outwards. What Tracker.track,
    new_record, _stacks.capture_from and Sites.opened do for a response, inline: each is
    a call less per streamed response.
    """
    tracker = TRACKER
    if stack is None:
        depth = tracker.stack_depth
        if frame is not None:
            code = frame.f_code
            lasti = frame.f_lasti
            known = _LAST.get(id(code) ^ lasti)
            if known is not None and known[0] is code and known[1] == lasti:
                # the stack last captured at this line, if the frames are still those:
                # compared in place (the common case, a loop), without the list, tuple and
                # key made below
                n = len(known)
                up = frame.f_back
                i = 2
                while i < n and up is not None and known[i] is up.f_code and \
                        known[i + 1] == up.f_lasti:
                    up = up.f_back
                    i += 2
                if i == n and (n == 2 * depth or (up is None and n < 2 * depth)):
                    stack = known
        if stack is None:
            stack = _stacks.capture_from(frame, depth)  # not the line last seen: anew
            if frame is not None and stack:
                if len(_LAST) >= _LAST_MAX:
                    _LAST.clear()
                _LAST[id(code) ^ lasti] = stack  # holds the code: the id stays its own
    key = id(response)
    # the type called: one args tuple, where weakref.ref.__new__ made and sliced one
    record: Record = _ResponseRecord(response, tracker._on_response_death)
    record.key = key
    record.integration = reader
    record.type_name = type_name
    record.stack = stack
    record.resources = resources  # weak references, or what dies with the response
    record.created = monotonic()
    try:
        record.thread = _THREAD.thread._name
    except AttributeError:  # this thread's first record
        record.thread = thread_name()
    # as new_record(): a call only inside a running loop
    record.task = task_now() if (_asyncio[0]() is not None if _asyncio
                                 else "asyncio" in sys.modules) else None
    record.closed = False
    record.close_called = False
    owner = record.owner = tracker.owner if tracker.owner_of is None else \
        tracker.owner_of(stack)
    record.held = None
    record.origin = origin
    crowded = None
    lock = tracker._lock
    lock.acquire()  # not `with`: its __enter__ and __exit__ cost twice as much
    try:
        live = tracker._live
        old = live.get(key)
        if old is not None:
            if old() is response:
                return None  # tracked already (as in Tracker.track)
            del live[key]
            tracker._unown(old)
        # numbered under the lock and appended: _live stays in creation order (since())
        record.seq = next(tracker._seq)
        live[key] = record
        if owner is not None:
            tracker._owners.add(record)
        sites = tracker.sites
        if sites is None:
            record.site = None
        else:
            found = sites._by_stack.get(id(stack))
            if found is not None and found[0] is stack and found[1] == type_name:
                site = record.site = found[2]  # Sites.opened(), inline
                site.open += 1
                site.created += 1
                if site.open == site.check_at:
                    site.check_at = 0
                    crowded = site
            else:
                record.site = None
                crowded = sites.opened(record)
    finally:
        lock.release()
    if crowded is not None and sites is not None:
        sites.warn(crowded, record)
    if old is not None:  # an earlier object at this address died unjudged: judge it now
        tracker._report_if_open([old])
    if tracker.on_event is not None:
        tracker.on_event(record, "created")
    return record
