"""The request path of a session: how many requests, where the last one was, use after close."""

from __future__ import annotations

import logging
import sys
from time import monotonic

from . import _frames, _stacks
from ._tracker import TRACKER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType

    from ._tracker import Record

# The files seen on request paths, by whether they are the user's (outside installed
# packages, the stdlib, leakguard, wrapt: _stacks.is_library, which reads the file name
# only). Keyed by the file name: a str caches its hash and the code objects of one module
# share one, so a frame costs two attribute reads and a set lookup, no call (a dict keyed
# by id(code) cost a call and an int per frame, ~2.5x as much). Bounded: cleared when full.
_USER_FILES: set[str] = set()
_LIBRARY_FILES: set[str] = set()
_FILES_MAX = 20000
_MAX_WALK = 64


def _user_file(filename: str) -> bool:
    """Whether a file not seen yet is the user's; remembered either way."""
    user = not _stacks.is_library(filename, _stacks._LIBRARIES)
    if len(_USER_FILES) + len(_LIBRARY_FILES) >= _FILES_MAX:
        _USER_FILES.clear()
        _LIBRARY_FILES.clear()
    (_USER_FILES if user else _LIBRARY_FILES).add(filename)
    return user


def _is_user(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    if filename in _USER_FILES:
        return True
    return filename not in _LIBRARY_FILES and _user_file(filename)


def user_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost user frame from `frame` outwards; else the innermost outside leakguard
    and wrapt; None when there is neither. One walk, no copies."""
    start = frame
    n = _MAX_WALK
    while frame is not None and n:  # every request walks: _is_user() inline, no call per frame
        filename = frame.f_code.co_filename
        if filename in _USER_FILES or (filename not in _LIBRARY_FILES
                                       and _user_file(filename)):
            return frame
        frame = frame.f_back
        n -= 1
    # no user frame (rare: a program installed as a package): the innermost not ours
    internal = _stacks._internal_dirs()
    frame, n = start, _MAX_WALK
    while frame is not None and n:
        if not frame.f_code.co_filename.startswith(internal):
            return frame
        frame = frame.f_back
        n -= 1
    return None


def user_depth(frame: FrameType | None) -> int:
    """How many frames above `frame` the innermost user frame is (0 when there is none)."""
    n = 0
    while frame is not None and n < _MAX_WALK:
        if _is_user(frame):
            return n
        frame = frame.f_back
        n += 1
    return 0


def innermost_user(frame: FrameType) -> FrameType:
    """The innermost user frame from `frame` outwards; `frame` itself when there is none."""
    found: FrameType | None = frame
    n = _MAX_WALK
    while found is not None and n:
        if _is_user(found):
            return found
        found = found.f_back
        n -= 1
    return frame


def note_request(session: object, reusable: bool, closer: str) -> FrameType | None:
    """Count a request of a tracked session and remember where it was made.

    A session of a library that can be used after close (`reusable`) and is found closed
    counts as open again, and the first such use is reported. Returns the user's frame
    found (for the stack of the response, without a second walk); None if not looked for.
    """
    record = TRACKER._live.get(id(session))
    if record is None or record() is not session:
        if not reusable or not TRACKER._closed:
            return None
        record = TRACKER.closed_record(session)
        if record is None or not TRACKER.reopen(record):
            return None
        _reused(record, closer)
    # the user's frame: user_frame(), inline (once per request, a call less); above the
    # wrapper first
    found: FrameType | None = sys._getframe(2)
    n = _MAX_WALK
    while found is not None and n:
        filename = found.f_code.co_filename
        if filename in _USER_FILES or (filename not in _LIBRARY_FILES
                                       and _user_file(filename)):
            break
        found = found.f_back
        n -= 1
    else:
        found = user_frame(sys._getframe(2))  # none: the fallback
    if found is not None:
        record.last_code = found.f_code
        record.last_lasti = found.f_lasti
    record.last_time = monotonic()
    record.uses += 1
    return found


def closed_here() -> tuple[CodeType, int, float]:
    """Where (the user's frame) and when a session is being closed, for used-after-close."""
    try:
        frame = sys._getframe(2)  # above the close wrapper
    except ValueError:  # called straight from C (atexit.register(session.close)): no caller
        frame = sys._getframe(1)
    found = user_frame(frame) or frame
    return found.f_code, found.f_lasti, monotonic()


def _reused(record: Record, closer: str) -> None:
    from . import _api, _report

    reporter = _api._STATE.reporter
    if reporter is None:
        return
    depth = user_depth(sys._getframe(1))  # the stack of the use starts at the user's line
    use = _stacks.capture(TRACKER.stack_depth, depth + 1 if depth else 3)
    leak = _report.Leak(record, "reused")
    if reporter.suppressions is not None and reporter.suppressions.match(leak) is not None:
        return
    when = ""
    closed = record.closed_at
    closed_info: dict[str, object] | None = None
    if closed is not None:
        code, lasti, at = closed
        line = _stacks.line_of(code, lasti)
        age = monotonic() - at
        when = (f"closed {age:.1f} s ago at {_stacks.short_path(code.co_filename)}:{line} "
                f"in {code.co_name}; ")
        closed_info = {"file": code.co_filename, "line": line, "function": code.co_name,
                       "age_s": round(age, 3)}
    used = _frames.frames(use)
    text = (f"leakguard: {record.type_name} used after {closer}() ({when}its new connections "
            f"stay open until it is closed again)\n" + _frames.format_frames(used, "Used at"))
    _report.emit(logging.WARNING, text)
    if reporter.options.report:
        from ._jsonl import append

        data = leak.as_dict()
        data["closed"] = closed_info
        data["stack"] = [f.as_dict() for f in used]
        data["site"] = _stacks.site_text(*_stacks.site(use))
        append(reporter.options.report, data)
