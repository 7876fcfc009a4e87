"""The request path of a session: how many requests, where the last one was, use after close."""

from __future__ import annotations

import logging
import sys
from time import monotonic

from . import _stacks
from ._tracker import TRACKER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType

    from ._tracker import Record

# id(code) -> (code, whether it is the user's: outside installed packages, the stdlib,
# leakguard, wrapt): one dict lookup per frame on the request path, bounded by the code
# objects seen. Keyed by id, not by the code object, whose hash is computed anew at every
# lookup (3.11: its names and constants, recursively); the entry holds the code object, so
# its id stays its own while the entry lives.
_USER: dict[int, tuple[CodeType, bool]] = {}
_USER_MAX = 20000
_MAX_WALK = 64


def _is_user(code: CodeType) -> bool:
    user = not _stacks.is_library(code.co_filename, _stacks._LIBRARIES)
    if len(_USER) >= _USER_MAX:
        _USER.clear()
    _USER[id(code)] = (code, user)
    return user


def user_frame(frame: FrameType | None) -> tuple[CodeType, int] | None:
    """(code, offset) of the innermost user frame from `frame` outwards: one walk, no copies."""
    first: FrameType | None = None
    n = _MAX_WALK
    while frame is not None and n:
        code = frame.f_code
        seen = _USER.get(id(code))
        user = seen[1] if seen is not None and seen[0] is code else _is_user(code)
        if user:
            return code, frame.f_lasti
        if first is None and not code.co_filename.startswith(_stacks._internal_dirs()):
            first = frame  # no user frame at all: the innermost outside leakguard and wrapt
        frame = frame.f_back
        n -= 1
    return None if first is None else (first.f_code, first.f_lasti)


def user_depth(frame: FrameType | None) -> int:
    """How many frames above `frame` the innermost user frame is (0 when there is none)."""
    n = 0
    while frame is not None and n < _MAX_WALK:
        code = frame.f_code
        seen = _USER.get(id(code))
        user = seen[1] if seen is not None and seen[0] is code else _is_user(code)
        if user:
            return n
        frame = frame.f_back
        n += 1
    return 0


def innermost_user(frame: FrameType) -> FrameType:
    """The innermost user frame from `frame` outwards; `frame` itself when there is none."""
    found: FrameType | None = frame
    n = _MAX_WALK
    while found is not None and n:
        code = found.f_code
        seen = _USER.get(id(code))
        user = seen[1] if seen is not None and seen[0] is code else _is_user(code)
        if user:
            return found
        found = found.f_back
        n -= 1
    return frame


def note_request(session: object, reusable: bool, closer: str) -> None:
    """Count a request of a tracked session and remember where it was made.

    A session of a library that can be used after close (`reusable`) and is found closed
    counts as open again, and the first such use is reported.
    """
    record = TRACKER._live.get(id(session))
    if record is None or record() is not session:
        if not reusable or not TRACKER._closed:
            return
        record = TRACKER.closed_record(session)
        if record is None or not TRACKER.reopen(record):
            return
        _reused(record, closer)
    found = user_frame(sys._getframe(2))  # above the wrapper: the library's method, then on
    if found is not None:
        record.last_code, record.last_lasti = found
    record.last_time = monotonic()
    record.uses += 1


def closed_here() -> tuple[CodeType, int, float]:
    """Where (the user's frame) and when a session is being closed, for used-after-close."""
    try:
        frame = sys._getframe(2)  # above the close wrapper
    except ValueError:  # called straight from C (atexit.register(session.close)): no caller
        frame = sys._getframe(1)
    found = user_frame(frame) or (frame.f_code, frame.f_lasti)
    return found[0], found[1], monotonic()


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
    used = _stacks.frames(use)
    text = (f"leakguard: {record.type_name} used after {closer}() ({when}its new connections "
            f"stay open until it is closed again)\n" + _stacks.format_frames(used, "Used at"))
    _report.emit(logging.WARNING, text)
    if reporter.options.report:
        from ._jsonl import append

        data = leak.as_dict()
        data["closed"] = closed_info
        data["stack"] = [f.as_dict() for f in used]
        data["site"] = _stacks.site_text(*_stacks.site(use))
        append(reporter.options.report, data)
