"""Leak reports: each leak once (unless suppressed or claimed), the closing summary, JSON Lines.

The record itself is _leak.Leak; where the text goes is _emit. Both are re-exported here.
"""

from __future__ import annotations

import logging
import os
import threading

from . import _frames, _stacks
from ._config import RUN_STATUS
from ._emit import emit, logger, set_level
from ._leak import EVENTS, OTHER_EVENTS, Leak, count_connections_now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._config import Options
    from ._suppress import Suppressions
    from ._tracker import Record

__all__ = ["EVENTS", "OTHER_EVENTS", "Claim", "Leak", "Reporter", "count_connections_now",
           "emit", "leak_counts", "leak_nouns", "logger", "set_level"]


def started_for_run() -> None:
    """Under `leakguard run`: say that this process switched leakguard on (see cli._run)."""
    status_file = os.environ.get(RUN_STATUS)
    if status_file:
        from ._jsonl import append

        append(status_file, {"pid": os.getpid(), "started": 1})


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
                    + _frames.format_stack(record.stack, f"{short} created at"))
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

