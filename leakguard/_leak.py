"""One leaked (or open) session or response as the SPEC's record: its text and JSON fields."""

from __future__ import annotations

import os
from time import monotonic as _now

from . import _frames, _stacks
from ._config import ROOT_PID
from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._tracker import Record

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
        self.frames = _frames.frames(record.stack)

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
                + _frames.format_frames(shown, f"{short} created at"))

    def site(self, library_dirs: tuple[str, ...] = ()) -> tuple[str, int, str]:
        """The creation site (file, line, function) that groups the summary (_stacks.site)."""
        if self._site is None or library_dirs:
            self._site = _stacks.site(self._raw_stack, library_dirs)
        return self._site
