"""Leak reports: logging (or stderr), the closing summary, JSON Lines and suppressions."""

from __future__ import annotations

import logging
import os
import sys
import threading
from time import monotonic as _now

from . import _stacks
from ._config import ROOT_PID, RUN_STATUS
from ._guard import guard, internal_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._config import Options
    from ._suppress import Suppressions
    from ._tracker import Record

logger = logging.getLogger("leakguard")

EVENTS = {"gc": "garbage-collected without close()", "exit": "still open at interpreter exit"}
OTHER_EVENTS = {"open": "still open at the end of check()",
                "teardown": "still open after its owner's teardown"}


# Connection counts taken at the start of the exit, before the program's atexit handlers
# and urllib3's finalizers empty the pools: by record seq (see count_connections_now).
_COUNTED: dict[int, tuple[int | None, list[str]]] = {}


def count_connections_now(records: list[Record]) -> None:
    """Count the connections of these records now, for a report made later."""
    for record in records:
        with guard(f"counting the connections of a {record.type_name}"):
            _COUNTED[record.seq] = record.integration.connections(record.resources)


class Leak:
    """One leaked (or open) session as the SPEC's record: the fields of the JSON line."""

    __slots__ = ("_raw_stack", "_site", "age_s", "connections", "event", "frames", "kind",
                 "last_use", "origins", "pid", "requests", "seq", "task", "thread", "type")

    def __init__(self, record: Record, event: str) -> None:
        self.event = event
        self.kind = record.kind
        self.type = record.type_name
        self.pid = os.getpid()
        self.thread = record.thread
        self.task = record.task
        self.age_s = round(record.age(), 3)
        self.seq = record.seq
        count: int | None = None
        origins: list[str] = []
        if record.kind == "response":  # its origin was noted when it was made
            count, origins = 1, ([record.origin] if record.origin else [])
        else:
            with guard(f"counting the connections of a {record.type_name}"):
                counted = _COUNTED.pop(record.seq) if record.seq in _COUNTED else None
                count, origins = counted or record.integration.connections(record.resources)
        self.connections = count
        self.origins = origins
        # a session's requests: how many, and the user's line of the last one
        self.requests: int | None = None
        self.last_use: dict[str, object] | None = None
        if record.kind == "session":
            self.requests = record.uses
            code = record.last_code
            if code is not None:
                self.last_use = {"file": code.co_filename,
                                 "line": _stacks.line_of(code, record.last_lasti),
                                 "function": code.co_name,
                                 "age_s": round(_now() - record.last_time, 3)}
        self._raw_stack = record.stack
        self._site: tuple[str, int, str] | None = None
        self.frames = _stacks.frames(record.stack)

    @property
    def stack(self) -> list[dict[str, object]]:
        """The creation stack, outermost first, as in the JSON record."""
        return [f.as_dict() for f in self.frames]

    def as_dict(self) -> dict[str, object]:
        """The JSON Lines record."""
        return {"event": self.event, "kind": self.kind, "type": self.type, "pid": self.pid,
                "thread": self.thread, "task": self.task, "age_s": self.age_s,
                "connections": self.connections, "origins": list(self.origins),
                "requests": self.requests,
                "last_use": None if self.last_use is None else dict(self.last_use),
                "stack": list(self.stack), "site": _stacks.site_text(*self.site())}

    def __repr__(self) -> str:
        return f"<leakguard.Leak {self.as_dict()!r}>"

    def headline(self) -> str:
        """`requests.Session garbage-collected without close() (1 open connection ...)`."""
        what = EVENTS.get(self.event) or OTHER_EVENTS.get(self.event, "still open")
        if self.kind == "response":
            conns = "holding a connection" + (f" to {self.origins[0]}" if self.origins else "")
        elif self.connections is None:
            conns = "open connections unknown"
        else:
            plural = "" if self.connections == 1 else "s"
            conns = f"{self.connections} open connection{plural}"
            if self.origins:
                conns += " to " + ", ".join(self.origins)
        where = f"thread {self.thread}" + (f", task {self.task}" if self.task else "")
        if os.environ.get(ROOT_PID, str(self.pid)) != str(self.pid):
            where += f", process {self.pid}"  # a child process: say which one
        return (f"{self.type} {what} ({conns}; created {self.age_s:.1f} s ago in {where}"
                f"{self._uses()})")

    def _uses(self) -> str:
        # `; 3 requests, the last 0.1 s ago at app.py:8 in fetch_all` (sessions only)
        if self.requests is None:
            return ""
        if not self.requests or self.last_use is None:
            return "; no requests"
        last = self.last_use
        at = f"{_stacks.short_path(str(last['file']))}:{last['line']} in {last['function']}"
        if self.requests == 1:
            return f"; 1 request, {last['age_s']:.1f} s ago at {at}"
        return f"; {self.requests} requests, the last {last['age_s']:.1f} s ago at {at}"

    def text(self, hide: tuple[str, ...] = ()) -> str:
        """The full report: headline, then the creation stack in traceback layout.

        `hide`: directories whose frames are left out (a test runner's own machinery).
        """
        short = self.type.rsplit(".", 1)[-1]
        shown = [f for f in self.frames if not _stacks.abspath(f.file).startswith(hide)] \
            if hide else self.frames
        return (f"leakguard: {self.headline()}\n"
                + _stacks.format_frames(shown, f"{short} created at"))

    def site(self, library_dirs: tuple[str, ...] = ()) -> tuple[str, int, str]:
        """The creation site (file, line, function) that groups the summary (_stacks.site)."""
        if self._site is None or library_dirs:
            self._site = _stacks.site(self._raw_stack, library_dirs)
        return self._site


_PREFIX = "leakguard: "
_level_set: list[int] = []  # the level enable() gave the `leakguard` logger, if it did


def set_level(level: int) -> None:
    """Let the `leakguard` logger pass `level` whatever the root logger's level, unless the
    program configured that logger itself (a level leakguard did not set)."""
    if logger.level == logging.NOTSET or logger.level in _level_set:
        logger.setLevel(level)
        _level_set[:] = [level]


def emit(level: int, text: str) -> None:
    """Log through the `leakguard` logger, or write to stderr when no handler can show it.

    Through logging the message goes without its `leakguard: ` prefix, which the logger's
    name already gives (`WARNING:leakguard:requests.Session ...`); on stderr it keeps it.
    """
    handlers = _live_handlers()
    if handlers:
        if not logger.isEnabledFor(level):
            return
        message = text[len(_PREFIX):] if text.startswith(_PREFIX) else text
        try:
            _handle(handlers, level, message)
            return
        except Exception as exc:  # a filter or handler that raises: say so once, use stderr
            internal_error("logging a report (it goes to stderr instead)", exc)
    if level >= logging.WARNING or logger.isEnabledFor(level):
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:  # stderr closed: nowhere left to say it
            pass


def _handle(handlers: list[logging.Handler], level: int, message: str) -> None:
    # What Logger.log does, minus the handlers that cannot write: a handler bound to a
    # closed stream would print a "--- Logging error ---" block per report instead.
    fn, lno, func, _ = logger.findCaller()
    record = logger.makeRecord(logger.name, level, fn, lno, message, (), None, func)
    if logger.disabled or not logger.filter(record):
        return
    for handler in handlers:
        if level >= handler.level:
            handler.handle(record)


def _live_handlers() -> list[logging.Handler]:
    # The handlers a record of the `leakguard` logger reaches, those that can still write:
    # logging.shutdown() closes handlers without removing them, and a program may close
    # the stream of a handler it left in place (pytest's capture, for one).
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(h for h in current.handlers if not _dead(h))
        if not current.propagate:
            break
        current = current.parent
    return found


def _dead(handler: logging.Handler) -> bool:
    if getattr(handler, "_closed", False):
        return True
    try:
        return bool(getattr(getattr(handler, "stream", None), "closed", False))
    except Exception:  # a stream whose `closed` raises cannot be trusted either
        return True


def _count_for_run() -> None:
    # `leakguard run` decides its exit status from every process's reported leaks, counted
    # when reported: a process may die before its exit (a terminated Pool worker)
    status_file = os.environ.get(RUN_STATUS)
    if status_file:
        from ._jsonl import append

        append(status_file, {"pid": os.getpid(), "leaks": 1})


class Reporter:
    """Turns leaked records into reports and remembers them for the summary."""

    def __init__(self, options: Options, suppressions: Suppressions | None) -> None:
        self.options = options
        self.suppressions = suppressions
        self.lock = threading.Lock()
        self.leaks: list[Leak] = []
        self.suppressed: dict[str, int] = {}
        self.library_dirs: tuple[str, ...] = ()
        self.claims: list[Claim] = []
        # the pytest plugin: takes a leak owned by a test or fixture, returns True if it did
        self.claimer: Callable[[Record, Leak], bool] | None = None
        self.pinned = 0  # leaks the pytest plugin reported itself: they count at exit too

    def leaked(self, items: list[tuple[Record, str]]) -> None:
        """Report each leaked record once, unless suppressed or claimed by check() or pytest."""
        for record, event in items:
            leak = Leak(record, event)
            rule = self.suppressions.match(leak) if self.suppressions else None
            if rule is not None:
                with self.lock:
                    self.suppressed[rule] = self.suppressed.get(rule, 0) + 1
                continue
            claim = self._claim_for(record.seq)
            if claim is not None:
                claim.leaks.append(leak)
                continue
            claimer = self.claimer
            if claimer is not None and claimer(record, leak):
                continue
            with self.lock:
                self.leaks.append(leak)
            emit(logging.WARNING, leak.text())
            if self.options.report:
                from ._jsonl import append

                append(self.options.report, leak.as_dict())
            _count_for_run()

    def _claim_for(self, seq: int) -> Claim | None:
        for claim in reversed(self.claims):
            if seq > claim.start:
                return claim
        return None

    def lifecycle(self, record: Record, event: str) -> None:
        """Debug logging of a session's creation and close."""
        if not logger.isEnabledFor(logging.DEBUG):
            return
        short = record.type_name.rsplit(".", 1)[-1]
        if event == "created":
            where = f"thread {record.thread}" + (f", task {record.task}" if record.task else "")
            text = (f"leakguard: {record.type_name} created in {where}\n"
                    + _stacks.format_stack(record.stack, f"{short} created at"))
        else:
            text = f"leakguard: {record.type_name} closed after {record.age():.1f} s"
        emit(logging.DEBUG, text)

    def summary(self) -> str | None:
        """The closing summary grouped by creation site, largest group first; None if clean."""
        with self.lock:
            leaks = list(self.leaks)
            suppressed = sum(self.suppressed.values())
        if not leaks and not suppressed:
            return None
        head = "leakguard: " + leak_counts(leaks)
        if suppressed:
            head += f", {suppressed} suppressed"
        groups: dict[tuple[str, str, int, str], int] = {}
        for leak in leaks:
            file, line, func = leak.site(self.library_dirs)
            key = (leak.type, _stacks.short_path(file), line, func)
            groups[key] = groups.get(key, 0) + 1
        ordered = sorted(groups.items(), key=lambda kv: -kv[1])
        width = len(str(ordered[0][1])) if ordered else 1
        lines = [head]
        for (typ, file, line, func), n in ordered:
            lines.append(f"  {n:>{width}} x {typ} created at {file}:{line} in {func}")
        if self.suppressed:
            lines.append("Suppressions used:")
            for rule, n in sorted(self.suppressed.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {n:>{width}} {rule}")
        unused = self.suppressions.never_matched() if self.suppressions else []
        if unused:  # a rule with a typo matches nothing, silently: say so
            lines.append("Suppressions never matched:")
            lines.extend(f"  {rule}" for rule in unused)
        return "\n".join(lines)


def leak_nouns(leaks: list[Leak]) -> str:
    """`2 leaked sessions`, or `1 leaked session; 1 leaked response`: one clause per kind."""
    return "; ".join(f"{n} leaked {kind}{'' if n == 1 else 's'}"
                     for kind in ("session", "response")
                     for n in [sum(1 for x in leaks if x.kind == kind)]
                     if n or (kind == "session" and not leaks))


def leak_counts(leaks: list[Leak]) -> str:
    """`3 leaked sessions (3 garbage-collected without close()); 2 leaked responses (...)`."""
    clauses = []
    for kind in ("session", "response"):
        mine = [x for x in leaks if x.kind == kind]
        if not mine and (kind == "response" or any(x.kind == "response" for x in leaks)):
            continue
        by_event = {e: sum(1 for x in mine if x.event == e) for e in EVENTS}
        parts = [f"{n} {EVENTS[e] if e == 'gc' else 'still open at exit'}"
                 for e, n in by_event.items() if n]
        clause = f"{len(mine)} leaked {kind}{'' if len(mine) == 1 else 's'}"
        if parts:
            clause += f" ({', '.join(parts)})"
        clauses.append(clause)
    return "; ".join(clauses)


class Claim:
    """Leaks of sessions created after `start` go to a check() block instead of the log."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.leaks: list[Leak] = []

