"""census(): open objects per creation site, and the LEAKGUARD_INTERVAL report of it."""

from __future__ import annotations

import logging
import os
import threading
import time

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._report import Reporter
    from ._sites import Site
    from ._tracker import Record, Tracker

    LeakSink = Callable[[list[tuple[Record, str]]], None]

TOP = 10  # sites shown in a census block


class Row:
    """One census line: a site with objects open now."""

    __slots__ = ("oldest", "open", "site")

    def __init__(self, site: Site, oldest: float) -> None:
        self.site = site
        self.open = 0
        self.oldest = oldest

    def as_dict(self, now: float) -> dict[str, object]:
        """The SPEC's census() entry."""
        return {"kind": self.site.kind, "type": self.site.type_name,
                "site": self.site.text(), "open": self.open,
                "created": self.site.created, "leaked": self.site.leaked,
                "oldest_age_s": round(now - self.oldest, 3)}


def rows(tracker: Tracker) -> list[Row]:
    """Sites with an object open now, largest first: one pass over the live records.

    Open as the library says, now (the check of the exit verdict): a session closed by a
    path leakguard does not wrap (an aiohttp connector closed directly) is not counted.
    """
    found: dict[Site, Row] = {}
    for record in tracker.live_records():
        site = record.site
        if site is None:
            continue  # not counted
        session = record()
        if session is None or not record.open_now(session):
            continue  # dead with its verdict pending, or closed by its library
        row = found.get(site)
        if row is None:
            row = found[site] = Row(site, record.created)
        row.open += 1
        if record.created < row.oldest:
            row.oldest = record.created
    return sorted(found.values(), key=lambda r: -r.open)


def census(tracker: Tracker) -> list[dict[str, object]]:
    """One dict per (kind, type, creation site) with something open now, largest first."""
    now = time.monotonic()
    return [row.as_dict(now) for row in rows(tracker)]


class Leaks:
    """Leaks reported since enable, per site (census) and in total (the interval report)."""

    def __init__(self) -> None:
        self.total = 0
        self.listeners: list[Callable[[Record, str], None]] = []

    def sink(self, reporter: Reporter) -> LeakSink:
        """The tracker's leak sink: the reporter's, then count what it actually reported."""

        def leaked(items: list[tuple[Record, str]]) -> None:
            before = len(reporter.leaks)
            reporter.leaked(items)
            # suppressed and claimed leaks are not reported: count those that were
            reported = {leak.seq for leak in reporter.leaks[before:]}
            for record, event in items:
                if record.seq not in reported:
                    continue
                self.total += 1
                if record.site is not None:
                    record.site.leaked += 1
                for listener in self.listeners:
                    with guard("counting a leak"):
                        listener(record, event)

        return leaked


class Ticker:
    """The LEAKGUARD_INTERVAL timer: a daemon thread that speaks only when something grew."""

    def __init__(self, interval: float, tracker: Tracker, leaks: Leaks,
                 report: str | None) -> None:
        self.interval = interval
        self.tracker = tracker
        self.leaks = leaks
        self.report = report
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._baseline()

    def _baseline(self) -> None:
        self.started = time.monotonic()
        self.last_tick: dict[Site, int] = {}  # open per site at the last tick
        self.last_shown: dict[Site, int] = {}  # open per site at the last census shown
        self.last_leaks = self.leaks.total

    def start(self) -> None:
        """Start the thread (daemon: it never keeps the process alive)."""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(self._stop,),
                                       name="leakguard-census", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop the thread at its next wake-up; it says nothing more."""
        self._stop.set()
        self.thread = None

    def after_fork(self) -> None:
        """In a forked child: the parent's thread is gone; one new thread, fresh baselines."""
        if self.thread is None:
            return
        self._baseline()
        self.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with guard("the census report"):
                self.tick()

    def tick(self) -> str | None:
        """Report the census if some site's open count grew or leaks were reported."""
        now = time.monotonic()
        found = rows(self.tracker)
        current = {row.site: row.open for row in found}
        grew = any(n > self.last_tick.get(site, 0) for site, n in current.items())
        new_leaks = max(0, self.leaks.total - self.last_leaks)
        self.last_tick = current
        self.last_leaks = self.leaks.total
        if not grew and not new_leaks:
            return None
        text = block(found, self.last_shown, now - self.started, new_leaks)
        from ._emit import emit

        emit(logging.WARNING, text)
        if self.report:
            from ._jsonl import append

            append(self.report, {
                "event": "census", "pid": os.getpid(),
                "elapsed_s": round(now - self.started, 3),
                "open": _totals(found), "leaks": new_leaks,
                "sites": [dict(row.as_dict(now), grown=row.open - self.last_shown.get(row.site, 0))
                          for row in found]})
        self.last_shown = current
        return text


def _totals(found: list[Row]) -> dict[str, int]:
    totals = {"session": 0, "response": 0}
    for row in found:
        totals[row.site.kind] = totals.get(row.site.kind, 0) + row.open
    return totals


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def age_text(seconds: float) -> str:
    """`42 s`, `59 min`, `3.5 h`: an age as a person reads it."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def block(found: list[Row], shown: dict[Site, int], elapsed: float, new_leaks: int) -> str:
    """The SPEC's census block: totals, then at most TOP sites, largest first."""
    totals = _totals(found)
    parts = [_plural(totals["session"], "open session")]
    if totals["response"]:
        parts.append(_plural(totals["response"], "open response"))
    lines = [f"leakguard: census after {elapsed:.0f} s: {', '.join(parts)}; "
             f"{_plural(new_leaks, 'leak')} since the last census"]
    now = time.monotonic()
    top = found[:TOP]
    width = len(str(top[0].open)) if top else 1
    for i, row in enumerate(top):
        delta = row.open - shown.get(row.site, 0)
        grown = f"{delta:+d}" + (" since the last census" if i == 0 else "")
        lines.append(f"  {row.open:>{width}} x {row.site.type_name} open, created at "
                     f"{row.site.label()} ({grown}, oldest {age_text(now - row.oldest)})")
    if len(found) > TOP:
        lines.append(f"  ... and {_plural(len(found) - TOP, 'more site')}")
    return "\n".join(lines)
