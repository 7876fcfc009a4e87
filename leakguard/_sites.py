"""Per-creation-site counts of open objects, and the LEAKGUARD_MAX_OPEN warning."""

from __future__ import annotations

import logging
import os

from . import _frames, _stacks
from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._stacks import Stack
    from ._tracker import Record

_STACK_CACHE_MAX = 4096  # distinct stacks remembered; sites themselves are kept for good


class Site:
    """One (kind, type, creation site): counts since enable, and the first stack seen there."""

    __slots__ = ("check_at", "created", "file", "function", "kind", "leaked", "line", "open",
                 "stack", "type_name", "warned")

    def __init__(self, kind: str, type_name: str, where: tuple[str, int, str],
                 stack: Stack, check_at: int = 0) -> None:
        self.kind = kind
        self.type_name = type_name
        self.file, self.line, self.function = where
        self.stack = stack
        self.open = 0
        self.created = 0
        self.leaked = 0
        self.warned = False
        # the open count at which the site is recounted by the library's state (max-open);
        # 0: never (responses, max-open off, or warned already)
        self.check_at = check_at

    def where(self) -> tuple[str, int, str]:
        """(file, line, function) of the creation site."""
        return self.file, self.line, self.function

    def text(self) -> str:
        """`file:line in function`, as in JSON records and census()."""
        return _stacks.site_text(self.file, self.line, self.function)

    def label(self) -> str:
        """`app.py:40 in handler`, the path relative to the working directory when below it."""
        return f"{_stacks.short_path(self.file)}:{self.line} in {self.function}"


class Sites:
    """Open counts per creation site, kept on the tracker's hot path: O(1) per open and close.

    A stack is mapped to its site (_stacks.site, the SPEC's) once: stacks are interned per
    call path, so two call paths reaching the same line are two stacks counted together.
    """

    def __init__(self, max_open: int, report: str | None,
                 emit: Callable[[int, str], None]) -> None:
        self.max_open = max_open
        self.report = report
        self.emit = emit  # _report.emit, given (importing it would make a circle)
        self._by_stack: dict[int, tuple[Stack, str, Site]] = {}
        self._sites: dict[tuple[str, str, str, int, str], Site] = {}

    # -- the hot path: called by the tracker with its lock held ---------------------------

    def opened(self, record: Record) -> Site | None:
        """Count a new open object; the site if it just reached the max-open limit."""
        stack = record.stack
        found = self._by_stack.get(id(stack))
        if found is not None and found[0] is stack and found[1] == record.type_name:
            site = found[2]
        else:
            site = self._site_of(record, stack)
        record.site = site
        site.open += 1
        site.created += 1
        if site.open == site.check_at:
            site.check_at = 0  # claimed: warn() recounts it, then warns or sets the next check
            return site
        return None

    def closed(self, record: Record) -> None:
        """An open object was closed or died."""
        # the tracker calls this once per record, as it leaves the registry
        site = record.site
        if site is not None:
            site.open -= 1

    def reopened(self, record: Record) -> None:
        """A closed object is open again (used after close) and back in the registry."""
        site = record.site
        if site is not None:
            site.open += 1

    def _site_of(self, record: Record, stack: Stack) -> Site:
        # once per distinct stack: line numbers are computed here, not per object
        kind = getattr(record, "kind", "session")
        where = _stacks.site(stack)
        key = (kind, record.type_name, *where)
        site = self._sites.get(key)
        if site is None:
            check_at = self.max_open if kind == "session" else 0
            site = self._sites[key] = Site(kind, record.type_name, where, stack, check_at)
        if len(self._by_stack) >= _STACK_CACHE_MAX:
            self._by_stack.clear()
        self._by_stack[id(stack)] = (stack, record.type_name, site)
        return site

    # -- queries and resets ----------------------------------------------------------------

    def all(self) -> list[Site]:
        """Every site seen since enable."""
        return list(self._sites.values())

    def reset(self) -> None:
        """Forget every count (a forked child starts afresh)."""
        self._by_stack = {}
        self._sites = {}

    # -- the warning -----------------------------------------------------------------------

    def warn(self, site: Site, record: Record) -> None:
        """The SPEC's max-open WARNING for a site, if the library says that many are open."""
        with guard("the max-open warning"):
            count = self._recount(site)
            if count is None:
                return
            site.warned = True
            short = record.type_name.rsplit(".", 1)[-1]
            head = (f"leakguard: {count} {record.type_name} open at once, all created at "
                    f"{site.label()} \N{EM DASH} is a session made for every request?")
            found = _frames.frames(record.stack)
            self.emit(logging.WARNING,
                 head + "\n" + _frames.format_frames(found, f"{short} created at"))
            if self.report:
                from ._jsonl import append

                append(self.report, {
                    "event": "crowd", "kind": site.kind, "type": record.type_name,
                    "pid": os.getpid(), "thread": record.thread, "task": record.task,
                    "open": count, "limit": self.max_open,
                    "site": site.text(),
                    "stack": [f.as_dict() for f in found]})

    def _recount(self, site: Site) -> int | None:
        """The site's objects open as their library says; None (and a later check) if too few.

        Runs only when leakguard's own count reaches a threshold: an object closed by a path
        leakguard does not wrap (an aiohttp connector closed directly) is open in that count
        until it dies. Those found closed stop being counted, so the count is the library's
        again, and the next recount waits until it can reach the limit (at least a quarter
        of the work just done, in objects created: the recounts cost O(1) per creation).
        """
        from ._tracker import TRACKER

        records = TRACKER.live_records()
        counted = count = 0
        closed: list[Record] = []
        for record in records:
            if record.site is not site:
                continue
            counted += 1
            alive = record()
            if alive is None:
                continue  # dead, its verdict pending: not open, and uncounted when judged
            if record.open_now(alive):
                count += 1
            else:
                closed.append(record)
            del alive
        if count >= self.max_open:
            return count
        gap = max(self.max_open - count, counted // 4, len(records) // 256, 1)
        with TRACKER._lock:  # counts change under the tracker's lock (Tracker._unown)
            live = TRACKER._live
            for record in closed:
                if record.site is site and live.get(record.key) is record:
                    record.site = None  # no longer counted here (its death neither)
                    site.open -= 1
            site.check_at = max(self.max_open, site.open + gap)
        return None
