"""Every LEAKGUARD* setting, parsed and validated in one place."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")

TRUTHY = ("1", "true", "yes", "on")
FALSY = ("0", "false", "no", "off", "")
LOG_LEVELS = ("warning", "debug")
ALL_TARGETS = ("requests", "aiohttp", "httpx", "urllib3", "httpx2", "niquests")
MAX_STACK_DEPTH = 1000
MAX_OPEN_LIMIT = 10**9
MAX_INTERVAL = 366 * 24 * 3600.0  # a year: beyond it a timer's wait() may overflow
METRICS = ("otel",)

# Internal variables, inherited by child processes (not options: no LEAKGUARD* prefix).
ROOT_PID = "_LEAKGUARD_ROOT_PID"  # the process where leakguard was first switched on
RUN_STATUS = "_LEAKGUARD_RUN_STATUS"  # `leakguard run`'s file of per-process leak counts

# One line per option: its enable() keyword and what it does. The variable is
# LEAKGUARD_<KEYWORD> and the `leakguard run` flag --<keyword-with-dashes>, both derived here.
OPTION_HELP = {
    "log": "warning: leaks only; debug: every session's life",
    "stack_depth": "frames kept per creation stack",
    "exitcode": "exit with this status if COMMAND exited 0 but a session leaked in any of "
                "its processes",
    "report": "append JSON Lines leak records to this file; %p in it is replaced by the pid",
    "suppressions": "suppressions file",
    "targets": f"comma list of {','.join(ALL_TARGETS)} (default: all)",
    "responses": "on/off: also track responses that hold a connection (default: on)",
    "max_open": "warn once per creation site when this many sessions from it are open at "
                "once; 0: off (default: 100)",
    "interval": "seconds between census reports in a long-running process; 0: off (default)",
    "sigterm": "on/off: report at SIGTERM when the program has no handler of its own "
               "(default: on)",
    "metrics": "otel: publish open and leak counts through the OpenTelemetry metrics API "
               "(default: off)",
}


def variable_of(keyword: str) -> str:
    """The environment variable of an option: LEAKGUARD_STACK_DEPTH for stack_depth."""
    return "LEAKGUARD_" + keyword.upper()


def flag_of(keyword: str) -> str:
    """The `leakguard run` flag of an option: --stack-depth for stack_depth."""
    return "--" + keyword.replace("_", "-")


class OptionError(ValueError):
    """A bad option value: `keyword` names the option, `accepted` says what it accepts."""

    def __init__(self, keyword: str, value: object, accepted: str) -> None:
        super().__init__(f"{keyword}={value!r}: {accepted}")
        self.keyword = keyword
        self.accepted = accepted


def _checked(keyword: str, parse: Callable[[Any], T], value: object) -> T:
    try:
        return parse(value)
    except ValueError as exc:
        raise OptionError(keyword, value, str(exc)) from None


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
        # each bad value raises OptionError naming its keyword
        self.log = _checked("log", _log_level, log)
        self.stack_depth = _checked("stack_depth", _stack_depth, stack_depth)
        self.exitcode = None if exitcode is None else _checked("exitcode", _exitcode, exitcode)
        self.report = None if report in (None, "") else str(report)
        self.suppressions = None if suppressions in (None, "") else str(suppressions)
        self.targets = _checked("targets", _targets, targets)
        self.responses = _checked("responses", _switch, responses)
        self.max_open = _checked("max_open", _max_open, max_open)
        self.interval = _checked("interval", _seconds, interval)
        self.sigterm = _checked("sigterm", _switch, sigterm)
        self.metrics = _checked("metrics", _metrics, metrics)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], where: str = "enable()") -> Options:
        """Options from keywords; an unknown keyword is a TypeError naming it and `where`."""
        for name in keywords:
            if name not in cls.__slots__:
                raise TypeError(f"{where} got an unknown keyword {name!r}; the options are "
                                f"{', '.join(OPTION_HELP)}")
        return cls(**keywords)

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


def _max_open(value: object) -> int:
    return _whole_number(value, 0, MAX_OPEN_LIMIT)


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


# variable -> enable() keyword
_VARIABLES = {variable_of(keyword): keyword for keyword in OPTION_HELP}


def bad_value(variable: str, value: str, accepted: str) -> str:
    """The SPEC's one-line message about a bad variable."""
    shown = value if len(value) <= 80 else value[:77] + "..."
    return f"leakguard: ignoring {variable}={shown!r}: {accepted}"


def complain(variable: str, value: str, accepted: str) -> None:
    """Write the SPEC's one-line message about a bad variable; never raise."""
    try:
        sys.stderr.write(bad_value(variable, value, accepted) + "\n")
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
        except OptionError as exc:
            complain(variable, raw, exc.accepted)
            continue
        found[keyword] = raw
    for variable in env:
        # a misspelt name (LEAKGUARD_EXITCOD=3) would silently do nothing
        if variable.startswith("LEAKGUARD_") and variable not in _VARIABLES:
            complain(variable, env[variable], "not a leakguard variable; they are "
                     + ", ".join(("LEAKGUARD", *_VARIABLES)))
    return found
