"""The pytest plugin's verdicts: owners judged at their teardown, leaks pinned on tests.

PYTEST_DONT_REWRITE: part of leakguard's pytest plugin (see leakguard/__init__.py).
"""

from __future__ import annotations

import os

import pytest

from ._pytest_support import Owner, allowed, runner_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._children import RunFolder
    from ._pinned import Entry
    from ._report import Leak, Reporter
    from ._tracker import Record, Tracker


class Judge:
    """What each owner leaked: its records' deaths, what stays open, its test's children."""

    def __init__(self, mode: str, tracker: Tracker, reporter: Reporter | None,
                 folder: RunFolder) -> None:
        from . import _children

        self.mode = mode
        self.tracker = tracker
        self.reporter = reporter
        self.folder = folder
        self.pid = os.getpid()
        self.claimed: dict[Owner | None, list[Leak]] = {}
        self.suspects: list[Owner] = []  # warn mode: owners with sessions open after teardown
        self.children = _children.Reader(folder.channel)
        self._child_claim = _children.claimer(folder.channel)
        self._hide: tuple[str, ...] | None = None

    def loose(self) -> list[Entry]:
        """The leaks of sessions that no test or fixture made (at import, say)."""
        leaks = self.claimed.pop(None, [])
        pinned = self.pin(sorted(leaks, key=lambda x: x.seq), "", "no test") if leaks else []
        self.count(pinned)
        return pinned

    def claim(self, record: Record, leak: Leak) -> bool:
        """The reporter's claimer: a leak is kept for its owner's verdict."""
        if os.getpid() != self.pid:  # a forked child: its parent pins it on the test
            return self._child_claim(record, leak)
        owner = record.owner if isinstance(record.owner, Owner) else None
        self.claimed.setdefault(owner, []).append(leak)
        return True

    def judge(self, owners: list[Owner], test: str,
              item: pytest.Item | None = None) -> tuple[list[Entry], bool]:
        """The leaks of owners just torn down (`item`: of this test; None: at the end)."""
        from ._guard import guard
        from ._report import Leak
        from ._settle import full_collections, settle

        entries: list[Entry] = []
        collected = False
        warn, final = self.mode == "warn", item is None
        with guard("judging a test's sessions"):
            if not final:
                entries += self._judge_suspects(final)
            records = [r for owner in owners for r in self.tracker.owned(owner)]
            still_open: list[Record] = []
            if records:
                # warn mode never pays a full collection per test: what young collections
                # leave open is judged after the interpreter's next full one (or at the end)
                roots = [item.module, item.funcargs] if isinstance(
                    item, pytest.Function) and item.module is not None else []
                still_open, collected = settle(self.tracker, records, not warn, roots)
            if not warn:
                self.tracker.forget(still_open)
            suspects = {r.owner for r in still_open} if warn else set()
            for owner in owners:
                if owner.kind == "test" and item is not None:
                    owner.test = owner.name
                    if still_open or owner in self.claimed:
                        owner.allowed = allowed(item)
                if owner in suspects:
                    owner.mark = full_collections()
                    self.suspects.append(owner)
                leaks = [] if warn else [Leak(r, "teardown") for r in still_open
                                         if r.owner is owner]
                entries += self._verdict(owner, leaks, test)
            if final:
                entries += self._judge_suspects(final)
            children = self._pin_children(test)
            if children and not (item is not None and allowed(item)):
                entries += children
            self.count(entries)
        return entries, collected

    def _verdict(self, owner: Owner, leaks: list[Leak], test: str) -> list[Entry]:
        # an owner's leaks (those its records died with, and `leaks`) pinned on its test
        leaks = self.claimed.pop(owner, []) + leaks
        if owner.mark < 0:  # a suspect keeps its records' owner: their deaths are its leaks
            self.tracker.release(owner)
        if not leaks or owner.allowed:
            return []
        return self.pin(sorted(leaks, key=lambda x: x.seq), owner.test or test,
                         owner.describe(), owner.soft)

    def _judge_suspects(self, final: bool) -> list[Entry]:
        # owners whose sessions were open after their teardown's young collections: those
        # still open after a full collection (the interpreter's own since, or at the end
        # one for them all) are leaks; the others were freed (the tracker judged them)
        from ._report import Leak
        from ._settle import full_collections, settle, still_open

        if not self.suspects or not (final or self.suspects[0].mark < full_collections()):
            return []
        now = full_collections()
        due = [o for o in self.suspects if final or o.mark < now]
        self.suspects = self.suspects[len(due):]
        records = [r for owner in due for r in self.tracker.owned(owner)]
        if final:
            found = settle(self.tracker, records)[0]
        else:  # the interpreter collected since: those alive now are held
            self.tracker.drain()  # the dead ones' verdicts, claimed for their owners first
            found = still_open(records)
        self.tracker.forget(found)
        entries: list[Entry] = []
        for owner in due:
            owner.mark = -1
            entries += self._verdict(owner, [Leak(r, "teardown") for r in found
                                             if r.owner is owner], "")
        return entries

    def pin(self, leaks: list[Leak], test: str, owner: str, soft: bool = False,
             ) -> list[Entry]:
        from ._pinned import from_leak

        if self._hide is None:
            self._hide = runner_dirs()
        entries = [from_leak(leak, test, owner, self._hide, soft) for leak in leaks]
        for leak in leaks:
            self._write({**leak.as_dict(), "test": test, "owner": owner})
        return entries

    def count(self, entries: list[Entry]) -> None:
        # `leakguard run` counts each process's leaks as they are reported
        from ._report import _count_for_run

        for _ in entries:
            _count_for_run()

    def _pin_children(self, test: str) -> list[Entry]:
        from ._pinned import from_child

        found = self.children.new()
        for item in found:
            record = item["record"]
            assert isinstance(record, dict)
            self._write({**record, "test": test, "owner": f"child process {record.get('pid')}"})
        return [from_child(item, test) for item in found]

    def _write(self, record: dict[str, object]) -> None:
        from ._jsonl import append

        append(self.jsonl_path(), record)

    def jsonl_path(self) -> str:
        options = getattr(self.reporter, "options", None)
        return getattr(options, "report", None) or self.folder.leaks
