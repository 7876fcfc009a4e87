"""The pytest plugin's helpers: owners, fixture code, markers, and pytest's own machinery.

PYTEST_DONT_REWRITE: part of leakguard's pytest plugin (see leakguard/__init__.py).
"""

from __future__ import annotations

import os
import sys

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType

    from pluggy import Result


_INI_MODES = {"true": "fail", "1": "fail", "yes": "fail", "on": "fail", "fail": "fail",
              "warn": "warn", "false": None, "0": None, "no": None, "off": None, "": None}
_MARKER_KEYWORDS = ("allow",)


def run_mode(config: pytest.Config) -> str | None:
    """fail, warn, or None (not asked for): --leakguard-mode, then the ini, then the flag."""
    value = str(config.getini("leakguard")).strip().lower()
    if value not in _INI_MODES:
        raise pytest.UsageError(
            f"ini option leakguard = {value!r}: accepted values are true, warn, false")
    chosen = config.getoption("leakguard_mode", None)
    if chosen:
        return str(chosen)
    ini_mode = _INI_MODES[value]
    if ini_mode:
        return ini_mode
    return "fail" if config.getoption("leakguard", False) else None


def active_in_process(config: pytest.Config) -> bool:
    """Whether leakguard is on in this pytest process without being asked of the plugin."""
    # leakguard switched on at start-up (LEAKGUARD=1) without --leakguard: show its reports.
    # Not in a child of a checked run (it sends its leaks to the parent), but in an xdist
    # worker of an implicitly checked run (its controller started it with the same setup).
    api = sys.modules.get("leakguard._api")
    if api is None or not api.is_enabled():
        return False
    from ._children import CHILDREN

    return CHILDREN not in os.environ or hasattr(config, "workerinput")


def check_markers(items: list[pytest.Item]) -> None:
    """A usage error for `@pytest.mark.leakguard(...)` with anything but `allow=`."""
    for item in items:
        for marker in item.iter_markers("leakguard"):
            unknown = [k for k in marker.kwargs if k not in _MARKER_KEYWORDS]
            if marker.args or unknown:
                what = f"unknown keyword {unknown[0]!r}" if unknown else "positional arguments"
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.leakguard takes only allow=True|False, "
                    f"not {what}")


class Owner:
    """A test or a fixture instance: whoever owes the close of the sessions it created."""

    __slots__ = ("allowed", "codes", "kind", "mark", "name", "scope", "soft", "test")

    def __init__(self, kind: str, name: str, scope: str = "function") -> None:
        self.kind = kind
        self.name = name
        self.scope = scope
        self.test = ""  # the test it is pinned on (a fixture: the one it was torn down in)
        self.allowed = False
        self.soft = False  # a wider fixture's leak found as an allow=True test tore it down
        self.codes: tuple[CodeType, ...] = ()
        self.mark = -1  # a suspect: the number of full collections when it became one

    def describe(self) -> str:
        if self.kind == "test":
            return f"test {self.name}"
        return f"fixture {self.name!r} ({self.scope} scope)"


def nested_codes(func: object) -> tuple[CodeType, ...]:
    """The code of a fixture function and of every function defined inside it."""
    import inspect

    try:
        func = inspect.unwrap(func)  # type: ignore[arg-type]
    except ValueError:
        pass
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    if code is None:
        return ()
    found = [code]
    for current in found:  # grows while walked: every nesting level
        found.extend(c for c in current.co_consts if hasattr(c, "co_consts"))
    return tuple(found)


def collect_unraisable(config: pytest.Config, outcome: Result[None]) -> None:
    # Our collection ran finalizers (and their warnings) now: pytest >= 8.4 would only show
    # their unraisable exceptions in the next test's setup, so show them in this teardown.
    module = sys.modules.get("_pytest.unraisableexception")
    collect = getattr(module, "collect_unraisable", None)
    force = getattr(outcome, "force_exception", None)
    if collect is None or force is None or outcome.excinfo is not None:
        return
    try:
        collect(config)
    except Exception as exc:
        force(exc)


def allowed(node: pytest.Item | pytest.Collector) -> bool:
    marker = node.get_closest_marker("leakguard") if hasattr(node, "get_closest_marker") \
        else None
    return bool(marker is not None and marker.kwargs.get("allow", False))


def runner_dirs() -> tuple[str, ...]:
    # the runner's own frames (pytest, pluggy, xdist's execnet, and the `pytest` console
    # script that started the process) say nothing about where a test made its session
    import _pytest
    import pluggy

    found = [m for m in (_pytest, pluggy, *(sys.modules.get(name) for name in
                                             ("pytest", "xdist", "execnet"))) if m is not None]
    hidden = [os.path.dirname(os.path.abspath(m.__file__ or "")) + os.sep for m in found]
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    if script.startswith(("pytest", "py.test")):
        hidden.append(os.path.abspath(sys.argv[0]))
    return tuple(hidden)
