"""Every LEAKGUARD* setting, parsed and validated in one place."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

TRUTHY = ("1", "true", "yes", "on")
FALSY = ("0", "false", "no", "off", "")
LOG_LEVELS = ("warning", "debug")
ALL_TARGETS = ("requests", "aiohttp", "httpx", "urllib3")
MAX_STACK_DEPTH = 1000
MAX_OPEN_LIMIT = 10**9
MAX_INTERVAL = 366 * 24 * 3600.0  # a year: beyond it a timer's wait() may overflow
METRICS = ("otel",)

# Internal variables, inherited by child processes (not options: no LEAKGUARD* prefix).
ROOT_PID = "_LEAKGUARD_ROOT_PID"  # the process where leakguard was first switched on
RUN_STATUS = "_LEAKGUARD_RUN_STATUS"  # `leakguard run`'s file of per-process leak counts


class Options:
    """Validated leakguard options; the defaults are the SPEC's."""

    __slots__ = ("exitcode", "interval", "log", "max_open", "metrics", "report", "responses",
                 "sigterm", "stack_depth", "suppressions", "targets")

    def __init__(
        self,
        log: str = "warning",
        stack_depth: int | str = 32,
        exitcode: int | str | None = None,
        report: str | None = None,
        suppressions: str | None = None,
        targets: Iterable[str] | str | None = None,
        responses: bool | str = True,
        max_open: int | str = 100,
        interval: float | str = 0,
        sigterm: bool | str = True,
        metrics: str | bool | None = None,
    ) -> None:
        self.log = _log_level(log)
        self.stack_depth = _stack_depth(stack_depth)
        self.exitcode = None if exitcode is None else _exitcode(exitcode)
        self.report = None if report in (None, "") else str(report)
        self.suppressions = None if suppressions in (None, "") else str(suppressions)
        self.targets = _targets(targets)
        self.responses = _switch(responses)
        self.max_open = _whole_number(max_open, 0, MAX_OPEN_LIMIT)
        self.interval = _seconds(interval)
        self.sigterm = _switch(sigterm)
        self.metrics = _metrics(metrics)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Options({fields})"


def parse_switch(value: str) -> bool | None:
    """Read a truthy/falsy value; None when it is neither."""
    v = value.strip().lower()
    if v in TRUTHY:
        return True
    if v in FALSY:
        return False
    return None


def _log_level(value: object) -> str:
    v = str(value).strip().lower()
    if v not in LOG_LEVELS:
        raise ValueError(f"accepted values are {', '.join(LOG_LEVELS)}")
    return v


def _whole_number(value: object, low: int, high: int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise ValueError(f"accepted values are whole numbers from {low} to {high}")
    return n


def _switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    found = parse_switch(str(value))
    if found is None:
        raise ValueError(f"accepted values are {' '.join(TRUTHY)} (on) "
                         f"or {' '.join(v for v in FALSY if v)} or empty (off)")
    return found


def _seconds(value: object) -> float:
    # decimals are accepted (0.5 is half a second); nan, inf and negatives are not
    try:
        n = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        n = -1.0
    if not 0 <= n <= MAX_INTERVAL:  # also false for nan
        raise ValueError(f"accepted values are numbers of seconds from 0 (off) "
                         f"to {int(MAX_INTERVAL)}, decimals allowed")
    return n


def _metrics(value: object) -> str | None:
    if value is None or value is False:
        return None
    v = str(value).strip().lower()
    if v in METRICS:
        return v
    if v in FALSY:
        return None
    raise ValueError(f"accepted values are {', '.join(METRICS)} "
                     f"or {' '.join(v for v in FALSY if v)} or empty (off)")


def _stack_depth(value: object) -> int:
    return _whole_number(value, 1, MAX_STACK_DEPTH)


def _exitcode(value: object) -> int:
    return _whole_number(value, 0, 255)


def _targets(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ALL_TARGETS
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    bad = [n for n in names if n not in ALL_TARGETS]
    if bad or not names:
        raise ValueError(f"accepted values are comma lists of {','.join(ALL_TARGETS)}")
    return tuple(n for n in ALL_TARGETS if n in names)


# variable -> (enable() keyword, parser); the parser raises ValueError naming what it accepts.
_VARIABLES = {
    "LEAKGUARD_LOG": "log",
    "LEAKGUARD_STACK_DEPTH": "stack_depth",
    "LEAKGUARD_EXITCODE": "exitcode",
    "LEAKGUARD_REPORT": "report",
    "LEAKGUARD_SUPPRESSIONS": "suppressions",
    "LEAKGUARD_TARGETS": "targets",
    "LEAKGUARD_RESPONSES": "responses",
    "LEAKGUARD_MAX_OPEN": "max_open",
    "LEAKGUARD_INTERVAL": "interval",
    "LEAKGUARD_SIGTERM": "sigterm",
    "LEAKGUARD_METRICS": "metrics",
}


def complain(variable: str, value: str, accepted: str) -> None:
    """Write the SPEC's one-line message about a bad variable; never raise."""
    try:
        shown = value if len(value) <= 80 else value[:77] + "..."
        sys.stderr.write(f"leakguard: ignoring {variable}={shown!r}: {accepted}\n")
    except Exception:  # stderr closed or unencodable: the program runs on regardless
        pass


def switch_from_env(environ: Mapping[str, str] | None = None) -> bool | None:
    """LEAKGUARD as True/False, or None when unset; a bad value is reported and means off."""
    env = os.environ if environ is None else environ
    raw = env.get("LEAKGUARD")
    if raw is None:
        return None
    value = parse_switch(raw)
    if value is None:
        complain("LEAKGUARD", raw, f"accepted values are {' '.join(TRUTHY)} (on) "
                                   f"or {' '.join(v for v in FALSY if v)} or empty (off)")
        return False
    return value


def options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The option keywords set in the environment, each value checked; bad ones dropped."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for variable, keyword in _VARIABLES.items():
        raw = env.get(variable)
        if raw is None:
            continue
        try:
            Options(**{keyword: raw})
        except ValueError as exc:
            complain(variable, raw, str(exc))
            continue
        found[keyword] = raw
    return found
