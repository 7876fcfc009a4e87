"""pytest plugin: `pytest --leakguard` fails the test (or fixture) that leaked a session.

Registered through the `pytest11` entry point and inert unless asked for: `--leakguard`
(`--leakguard-mode=fail|warn`), the ini option `leakguard = true|warn`, or leakguard already
active in the process (`LEAKGUARD=1`: warn mode, so that no report is lost in the capture).

PYTEST_DONT_REWRITE: may be imported before pytest marks it (see leakguard/__init__.py).
"""

from __future__ import annotations

import os

import pytest

from ._judge import Judge
from ._pytest_support import (
    Owner,
    active_in_process,
    allowed,
    check_markers,
    collect_unraisable,
    nested_codes,
    run_mode,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from types import CodeType
    from typing import Any

    from pluggy import Result

    from ._pinned import Entry
    from ._stacks import Stack

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
        self.fixtures: dict[object, Owner] = {}
        self.due: list[Owner] = []  # fixtures torn down, with records or leaks to judge
        self.test: Owner | None = None
        self.item: pytest.Item | None = None
        self.codes: dict[CodeType, Owner] = {}  # code defined in an active fixture -> it
        self._nested: dict[object, tuple[CodeType, ...]] = {}
        self.found: dict[str, list[Entry]] = {}  # test id -> entries for its teardown report
        self.entries: list[Entry] = []  # everything pinned, for the terminal summary
        self.suppressed = 0
        self.session: pytest.Session | None = None
        # the children's channel, and the JSON Lines of every leak without LEAKGUARD_REPORT
        self.folder = _children.RunFolder(worker=hasattr(config, "workerinput"))
        self.judge = Judge(mode, self.tracker, self.reporter, self.folder)
        from . import _sigterm

        _sigterm.at_death(self.folder.close)  # killed by SIGTERM: no unconfigure to remove it
        self._saved_claimer = None
        if self.reporter is not None:
            self._saved_claimer = self.reporter.claimer
            self.reporter.claimer = self.judge.claim
        self.tracker.owner_of = self._owner_of

    # -- who is creating sessions right now --------------------------------------------

    def _owner_of(self, stack: Stack) -> object:
        # a session made by code defined inside an active fixture (its factory) is its own
        codes = self.codes
        if codes:
            for code in stack[0::2]:
                owner = codes.get(code)  # type: ignore[arg-type]
                if owner is not None:
                    return owner
        return self.tracker.owner

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
        if owner in self.judge.claimed or self.tracker.owned(owner):
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
        entries, collected = self.judge.judge(owners, item.nodeid, item)
        if collected:
            collect_unraisable(item.config, outcome)
        if entries:
            self.found[item.nodeid] = entries

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
        self.session = session
        # fixtures torn down outside any test, leaks owned by no test, children's late words
        owners, self.due = self.due, []
        entries, _ = self.judge.judge(owners, "")
        entries += self.judge.loose()
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

        path = self.judge.jsonl_path()
        # the user's LEAKGUARD_REPORT as given (a %p pattern too); ours if it was written
        shown = path if path != self.folder.leaks or os.path.exists(path) else None
        lines = summary(self.entries, self.suppressed, self.mode == "warn", shown)
        if lines:
            terminalreporter.section("leakguard: leaked sessions and responses")
            for line in lines:
                terminalreporter.write_line(line)
            # named in the output: the folder stays
            self.folder.keep = shown == self.folder.leaks and lines[-1].endswith(shown)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        check_markers(items)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.session is not None:
            from . import _exit

            # final now; LEAKGUARD_EXITCODE replaces it only if 0 (pytest's launcher looked
            # sys.exit up before leakguard could learn what it is passed)
            _exit.exiting_with(int(self.session.exitstatus))
        self.tracker.owner = None
        self.tracker.owner_of = None
        if self.reporter is not None and self.reporter.claimer == self.judge.claim:
            self.reporter.claimer = self._saved_claimer
        from . import _sigterm

        _sigterm.at_death(self.folder.close, add=False)
        self.folder.close()
