"""pytest plugin: `pytest --leakguard` fails the test (or fixture) that leaked a session.

Registered through the `pytest11` entry point and inert unless asked for: `--leakguard`,
`--leakguard=warn`, or the ini option `leakguard = true|warn`.

PYTEST_DONT_REWRITE: may be imported before pytest marks it (see leakguard/__init__.py).
"""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from ._report import Leak
    from ._tracker import Record

MODES = {"fail": "fail", "true": "fail", "1": "fail", "yes": "fail", "on": "fail",
         "warn": "warn", "false": None, "0": None, "no": None, "off": None, "": None}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leakguard", "leaked HTTP client sessions")
    group.addoption(
        "--leakguard", nargs="?", const="fail", default=None, metavar="fail|warn",
        help="fail each test (or fixture) that leaks an HTTP client session; "
             "--leakguard=warn only reports them in the terminal summary")
    parser.addini("leakguard", "fail, warn or off: as --leakguard (true means fail)",
                  default="")


def _mode(config: pytest.Config) -> str | None:
    value = config.getoption("leakguard")
    if value is None:
        value = str(config.getini("leakguard"))
    key = str(value).strip().lower()
    if key not in MODES:
        raise pytest.UsageError(
            f"--leakguard takes fail or warn, not {value!r} (write --leakguard=warn; "
            "a bare --leakguard goes after the test paths or before another option)")
    return MODES[key]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leakguard(allow=True): do not check this test for leaked sessions")
    mode = _mode(config)
    if mode is not None:
        config.pluginmanager.register(LeakguardPlugin(mode), "leakguard-checker")


class Owner:
    """A test or a fixture instance: whoever owes the close of the sessions it created."""

    def __init__(self, kind: str, name: str, scope: str = "function") -> None:
        self.kind = kind
        self.name = name
        self.scope = scope

    def describe(self) -> str:
        if self.kind == "test":
            return f"test {self.name}"
        return f"fixture {self.name!r} ({self.scope} scope)"


class LeakguardPlugin:
    """Attributes every session to the test or fixture that created it, and checks it."""

    def __init__(self, mode: str) -> None:
        from . import _api
        from ._tracker import TRACKER

        if not _api.is_enabled():
            _api.enable()  # the options come from the LEAKGUARD_* variables
        self.mode = mode
        self.tracker = TRACKER
        self.state = _api._STATE
        self.claimed: dict[Owner, list[Leak]] = {}
        self.tests: dict[str, Owner] = {}
        self.fixtures: dict[object, Owner] = {}
        self.pending: dict[str, list[tuple[Owner, list[Leak]]]] = {}
        self.warnings: list[str] = []
        self._current = ""  # the test whose teardown finalizes fixtures right now
        reporter = self.state.reporter
        if reporter is not None:
            reporter.claimer = self._claim

    def _claim(self, record: Record, leak: Leak) -> bool:
        owner = record.owner
        if not isinstance(owner, Owner):
            return False
        self.claimed.setdefault(owner, []).append(leak)
        return True

    def _owned(self, owner: Owner) -> list[Leak]:
        from ._report import Leak
        from ._settle import settle

        still_open, _ = settle(self.tracker, self.tracker.owned(owner))
        self.tracker.forget(still_open)
        self.tracker.release(owner)
        leaks = self.claimed.pop(owner, []) + [Leak(r, "teardown") for r in still_open]
        return sorted(leaks, key=lambda leak: leak.seq)

    # -- who is creating sessions right now --------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object],
                             request: pytest.FixtureRequest) -> Generator[None, None, None]:
        owner = Owner("fixture", fixturedef.argname, fixturedef.scope)
        self.fixtures[fixturedef] = owner
        previous, self.tracker.owner = self.tracker.owner, owner
        try:
            yield
        finally:
            self.tracker.owner = previous

    def _test_phase(self, item: pytest.Item) -> Generator[None, None, None]:
        owner = self.tests.setdefault(item.nodeid, Owner("test", item.nodeid))
        previous, self.tracker.owner = self.tracker.owner, owner
        try:
            yield
        finally:
            self.tracker.owner = previous

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self._test_phase(item)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self._test_phase(item)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        self._current = item.nodeid
        yield from self._test_phase(item)

    # -- verdicts -------------------------------------------------------------------------

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[object],
                                      request: pytest.FixtureRequest) -> None:
        owner = self.fixtures.pop(fixturedef, None)
        if owner is None:
            return
        leaks = self._owned(owner)
        if leaks and not (owner.scope == "function" and _allowed(request.node)):
            node = self._current or request.node.nodeid
            self.pending.setdefault(node, []).append((owner, leaks))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        if call.when != "teardown":
            return
        report: pytest.TestReport = outcome.get_result()
        owner = self.tests.pop(item.nodeid, None)
        found = self.pending.pop(item.nodeid, [])
        if owner is not None:
            leaks = self._owned(owner)
            if leaks and not _allowed(item):
                found.insert(0, (owner, leaks))
        if not found:
            return
        text = "\n\n".join(_describe(o, leaks) for o, leaks in found)
        if self.mode == "warn":
            self.warnings.append(text)
            return
        report.outcome = "failed"
        report.longrepr = text

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.warnings:
            terminalreporter.section("leakguard: leaked sessions")
            for text in self.warnings:
                terminalreporter.write_line(text)


def _allowed(node: pytest.Item | pytest.Collector) -> bool:
    marker = node.get_closest_marker("leakguard") if hasattr(node, "get_closest_marker") \
        else None
    return bool(marker is not None and marker.kwargs.get("allow", False))


def _runner_dirs() -> tuple[str, ...]:
    # pytest's and pluggy's own frames say nothing about where a test made its session
    import os

    import _pytest
    import pluggy

    return tuple(os.path.dirname(os.path.abspath(m.__file__ or "")) + os.sep
                 for m in (_pytest, pluggy))


def _describe(owner: Owner, leaks: list[Leak]) -> str:
    noun = "session" if len(leaks) == 1 else "sessions"
    head = f"leakguard: {owner.describe()} leaked {len(leaks)} {noun}"
    hide = _runner_dirs()
    return "\n".join([head, *(leak.text(hide) for leak in leaks)])
