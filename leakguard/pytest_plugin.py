"""pytest plugin: `pytest --leakguard` fails the test (or fixture) that leaked a session.

Registered through the `pytest11` entry point and inert unless asked for: `--leakguard`
(`--leakguard-mode=fail|warn`), the ini option `leakguard = true|warn`, or leakguard already
active in the process (`LEAKGUARD=1`: warn mode, so that no report is lost in the capture).

PYTEST_DONT_REWRITE: may be imported before pytest marks it (see leakguard/__init__.py).
"""

from __future__ import annotations

import os

import pytest

from ._pytest_support import (
    Owner,
    active_in_process,
    allowed,
    check_markers,
    collect_unraisable,
    nested_codes,
    run_mode,
    runner_dirs,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from types import CodeType
    from typing import Any

    from pluggy import Result

    from ._pinned import Entry
    from ._report import Leak
    from ._stacks import Stack
    from ._tracker import Record

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leakguard", "leaked HTTP client sessions and responses")
    group.addoption(
        "--leakguard", action="store_true", default=False,
        help="fail each test (or fixture) that leaks an HTTP client session or response")
    group.addoption(
        "--leakguard-mode", choices=("fail", "warn"), default=None,
        help="fail (default): a leaking test fails; warn: leaks are only reported in the "
             "terminal summary (implies --leakguard)")
    parser.addini("leakguard", "true, warn or false: check tests as --leakguard does "
                               "(true fails leaking tests, warn only reports them)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leakguard(allow=True): do not check this test for leaked sessions")
    mode = run_mode(config)
    if mode is None and active_in_process(config):
        mode = "warn"
    if mode is not None:
        config.pluginmanager.register(LeakguardPlugin(config, mode), "leakguard-checker")


class LeakguardPlugin:
    """Attributes every session to the test or fixture that created it, and checks it."""

    def __init__(self, config: pytest.Config, mode: str) -> None:
        from . import _api, _children
        from ._tracker import TRACKER

        if not _api.is_enabled():
            _api.enable()  # the options come from the LEAKGUARD_* variables
        self.config = config
        self.mode = mode
        self.tracker = TRACKER
        self.reporter = _api._STATE.reporter
        self.pid = os.getpid()
        self.claimed: dict[Owner | None, list[Leak]] = {}
        self.fixtures: dict[object, Owner] = {}
        self.due: list[Owner] = []  # fixtures torn down, with records or leaks to judge
        self.suspects: list[Owner] = []  # warn mode: owners with sessions open after teardown
        self.test: Owner | None = None
        self.item: pytest.Item | None = None
        self.codes: dict[CodeType, Owner] = {}  # code defined in an active fixture -> it
        self._nested: dict[object, tuple[CodeType, ...]] = {}
        self.found: dict[str, list[Entry]] = {}  # test id -> entries for its teardown report
        self.entries: list[Entry] = []  # everything pinned, for the terminal summary
        self.suppressed = 0
        self._hide: tuple[str, ...] | None = None
        # the children's channel, and the JSON Lines of every leak without LEAKGUARD_REPORT
        self.folder = _children.RunFolder(worker=hasattr(config, "workerinput"))
        self.children = _children.Reader(self.folder.channel)
        self._child_claim = _children.claimer(self.folder.channel)
        self._saved_claimer = None
        if self.reporter is not None:
            self._saved_claimer = self.reporter.claimer
            self.reporter.claimer = self._claim
        self.tracker.owner_of = self._owner_of

    # -- where a leak goes ------------------------------------------------------------------

    def _claim(self, record: Record, leak: Leak) -> bool:
        if os.getpid() != self.pid:  # a forked child: its parent pins it on the test
            return self._child_claim(record, leak)
        owner = record.owner if isinstance(record.owner, Owner) else None
        self.claimed.setdefault(owner, []).append(leak)
        return True

    def _owner_of(self, stack: Stack) -> object:
        # a session made by code defined inside an active fixture (its factory) is its own
        codes = self.codes
        if codes:
            for code in stack[0::2]:
                owner = codes.get(code)  # type: ignore[arg-type]
                if owner is not None:
                    return owner
        return self.tracker.owner

    # -- who is creating sessions right now --------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.test = Owner("test", item.nodeid)
        self.item = item
        self.tracker.owner = self.test

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object],
                             request: pytest.FixtureRequest) -> Generator[None, None, None]:
        owner = Owner("fixture", fixturedef.argname, fixturedef.scope)
        self.fixtures[fixturedef] = owner
        func = fixturedef.func
        codes = self._nested.get(func)
        if codes is None:
            codes = self._nested[func] = nested_codes(func)
        owner.codes = codes
        for code in codes:
            self.codes[code] = owner
        previous, self.tracker.owner = self.tracker.owner, owner
        try:
            yield
        finally:
            self.tracker.owner = previous

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[object],
                                      request: pytest.FixtureRequest) -> None:
        owner = self.fixtures.pop(fixturedef, None)
        if owner is None:
            return
        for code in owner.codes:
            if self.codes.get(code) is owner:
                del self.codes[code]
        if owner in self.claimed or self.tracker.owned(owner):
            # judged with the test's own records at the end of this teardown: one collection
            owner.test = self.test.name if self.test is not None else ""
            if owner.scope == "function":
                owner.allowed = allowed(request.node)
            else:  # its own leak: reported, but an allow=True test that tore it down passes
                owner.soft = self.item is not None and allowed(self.item)
            self.due.append(owner)
        else:
            self.tracker.release(owner)

    # -- verdicts -------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Result[None], None]:
        outcome = yield
        test, self.test, self.item = self.test, None, None
        self.tracker.owner = None
        owners = [*self.due, *([test] if test is not None else [])]
        self.due = []
        entries, collected = self._judge(owners, item.nodeid, item)
        if collected:
            collect_unraisable(item.config, outcome)
        if entries:
            self.found[item.nodeid] = entries

    def _judge(self, owners: list[Owner], test: str,
               item: pytest.Item | None = None) -> tuple[list[Entry], bool]:
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
                roots = [vars(item.module), item.funcargs] if isinstance(
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
            self._count(entries)
        return entries, collected

    def _verdict(self, owner: Owner, leaks: list[Leak], test: str) -> list[Entry]:
        # an owner's leaks (those its records died with, and `leaks`) pinned on its test
        leaks = self.claimed.pop(owner, []) + leaks
        if owner.mark < 0:  # a suspect keeps its records' owner: their deaths are its leaks
            self.tracker.release(owner)
        if not leaks or owner.allowed:
            return []
        return self._pin(sorted(leaks, key=lambda x: x.seq), owner.test or test,
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
        found = settle(self.tracker, records)[0] if final else still_open(records)
        self.tracker.forget(found)
        entries: list[Entry] = []
        for owner in due:
            owner.mark = -1
            entries += self._verdict(owner, [Leak(r, "teardown") for r in found
                                             if r.owner is owner], "")
        return entries

    def _pin(self, leaks: list[Leak], test: str, owner: str, soft: bool = False,
             ) -> list[Entry]:
        from ._pinned import from_leak

        if self._hide is None:
            self._hide = runner_dirs()
        entries = [from_leak(leak, test, owner, self._hide, soft) for leak in leaks]
        for leak in leaks:
            self._write({**leak.as_dict(), "test": test, "owner": owner})
        return entries

    def _count(self, entries: list[Entry]) -> None:
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

        append(self._jsonl_path(), record)

    def _jsonl_path(self) -> str:
        options = getattr(self.reporter, "options", None)
        return getattr(options, "report", None) or self.folder.leaks

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        if call.when != "teardown":
            return
        entries = self.found.pop(item.nodeid, None)
        if not entries:
            return
        report: pytest.TestReport = outcome.get_result()
        report.leakguard = entries  # type: ignore[attr-defined]  # travels to xdist's controller
        failing = [e for e in entries if not e.get("soft")]
        if self.mode == "fail" and failing:
            from ._pinned import by_owner, describe

            text = "\n\n".join(describe(owner, test, found)
                               for owner, test, found in by_owner(failing))
            if report.failed:  # the teardown's own error stays; ours is shown after it
                report.sections.append(("leakguard", text))
            else:
                report.outcome = "failed"
                report.longrepr = text

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entries = getattr(report, "leakguard", None)
        if entries:
            self.entries.extend(entries)

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        yield
        # fixtures torn down outside any test, leaks owned by no test, children's late words
        owners, self.due = self.due, []
        loose = self.claimed.pop(None, [])
        entries, _ = self._judge(owners, "")
        if loose:
            pinned = self._pin(sorted(loose, key=lambda x: x.seq), "", "no test")
            self._count(pinned)
            entries += pinned
        self.entries.extend(entries)
        if self.mode == "fail" and session.exitstatus == 0 and any(
                e.get("soft") for e in self.entries):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a leak failed no test
        if self.reporter is not None:
            # LEAKGUARD_EXITCODE applies to the leaks shown here (xdist: every worker's)
            self.reporter.pinned = len(self.entries)
            with self.reporter.lock:
                self.suppressed = sum(self.reporter.suppressed.values())
                self.reporter.suppressed.clear()  # counted here: the exit summary is not ours
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["leakguard_entries"] = entries
            workeroutput["leakguard_suppressed"] = self.suppressed
            # a worker may be ended before its unconfigure, and shows no summary of its own
            if self.folder.owned:
                self.folder.close()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        # pytest-xdist's controller: what its workers found outside any test
        output = getattr(node, "workeroutput", None) or {}
        self.entries.extend(output.get("leakguard_entries", ()))
        self.suppressed += int(output.get("leakguard_suppressed", 0))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from ._pinned import summary

        path = self._jsonl_path()
        # the user's LEAKGUARD_REPORT as given (a %p pattern too); ours if it was written
        shown = path if path != self.folder.leaks or os.path.exists(path) else None
        lines = summary(self.entries, self.suppressed, self.mode == "warn", shown)
        if lines:
            terminalreporter.section("leakguard: leaked sessions")
            for line in lines:
                terminalreporter.write_line(line)
            # named in the output: the folder stays
            self.folder.keep = shown == self.folder.leaks and lines[-1].endswith(shown)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        check_markers(items)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.tracker.owner = None
        self.tracker.owner_of = None
        if self.reporter is not None and self.reporter.claimer == self._claim:
            self.reporter.claimer = self._saved_claimer
        self.folder.close()
