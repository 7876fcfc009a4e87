"""enable(), disable(), open_sessions() and check(): the state machine behind the public API."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading

from . import _census, _exit, _hooks, _report, _sigterm
from ._config import ROOT_PID, Options
from ._guard import guard, internal_error
from ._tracker import TRACKER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType, TracebackType
    from typing import Any, Callable, TypeVar

    from .integrations import Integration

    F = TypeVar("F", bound=Callable[..., Any])


class LeakError(AssertionError):
    """Sessions created inside a check() block leaked; `.leaks` holds their records."""

    def __init__(self, leaks: list[_report.Leak]) -> None:
        self.leaks = leaks
        body = "\n".join(leak.text() for leak in leaks)
        super().__init__(f"{_report.leak_nouns(leaks)}\n{body}")


class _State:
    """Whether leakguard is on, with what options, and which integrations it patched."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.enabled = False
        self.options = Options()
        self.reporter: _report.Reporter | None = None
        self.integrations: dict[str, Integration] = {}
        self.atexit_registered = False
        self.pid = os.getpid()
        self.leaks = _census.Leaks()
        self.ticker: _census.Ticker | None = None


_STATE = _State()


def enable(**options: Any) -> None:
    """Switch leakguard on; keywords override the LEAKGUARD_* variables; again: new options."""
    from ._config import options_from_env

    # a bad keyword or value raises here, in the caller's code; a bad variable is one line
    opts = Options.from_keywords({**options_from_env(), **options}, "enable()")
    with _STATE.lock:
        if _STATE.enabled:
            disable()
        suppressions = _load_suppressions(opts.suppressions)
        reporter = _report.Reporter(opts, suppressions)
        if os.environ.get("_LEAKGUARD_PYTEST_CHILDREN"):  # a child of a checked pytest run
            from ._children import install

            install(reporter)
        _STATE.options = opts
        _STATE.reporter = reporter
        # the leakguard logger passes its reports whatever the root logger's level
        _report.set_level(logging.DEBUG if opts.log == "debug" else logging.WARNING)
        TRACKER.stack_depth = opts.stack_depth
        _STATE.leaks = leaks = _census.Leaks()
        TRACKER.on_leaks = leaks.sink(reporter)
        from ._sites import Sites

        TRACKER.sites = Sites(opts.max_open, opts.report, _report.emit)
        TRACKER.on_event = reporter.lifecycle if opts.log == "debug" else None
        TRACKER.start()
        _STATE.enabled = True
        _report.started_for_run()
        from .integrations import all_integrations

        _STATE.integrations = {n: i for n, i in all_integrations().items() if n in opts.targets}
        explicit = opts.targets != Options().targets
        for integration in _STATE.integrations.values():
            _hooks.when_imported(integration.module,
                                 functools.partial(_patch, integration, explicit))
        if not _STATE.atexit_registered:
            _exit.register(_exit_report, lambda: _STATE.options.exitcode, _exit_prepare)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork)
                if hasattr(signal, "pthread_sigmask"):  # after _after_fork in the child
                    os.register_at_fork(before=_sigterm.before_fork,
                                        after_in_parent=_sigterm.after_fork_unblock,
                                        after_in_child=_sigterm.after_fork_unblock)
            _STATE.atexit_registered = True
        if opts.exitcode is not None:
            _exit.record_exit_requests()
        if opts.sigterm and _sigterm.install(_exit_report):
            _hooks.when_imported("multiprocessing", _sigterm.in_workers)
        if opts.metrics == "otel":
            from . import _metrics

            _metrics.start(TRACKER, leaks)
        if opts.interval:
            _STATE.ticker = _census.Ticker(opts.interval, TRACKER, leaks, opts.report)
            _STATE.ticker.start()
        os.environ.setdefault(ROOT_PID, str(os.getpid()))


def _load_suppressions(path: str | None) -> Any:
    if not path:
        return None
    from ._suppress import SuppressionError, Suppressions

    try:
        return Suppressions.load(path)
    except (OSError, SuppressionError) as exc:
        detail = exc if isinstance(exc, SuppressionError) else f"{path}: {exc.strerror}"
        try:
            sys.stderr.write(f"leakguard: ignoring the suppressions file: {detail}\n")
        except Exception:  # stderr closed: the program runs on regardless
            pass
        return None


def _patch(integration: Integration, explicit: bool, module: ModuleType) -> None:
    if not _STATE.enabled or integration.patched or integration.foreign(module):
        return
    if not integration.supported(module):
        why = (f"leakguard: not tracking {integration.name} {integration.version(module)}: "
               f"supported versions are {integration.supported_range()}")
        _report.emit(logging.WARNING if explicit else logging.DEBUG, why)
        return
    integration.responses = bool(_STATE.options.responses)
    integration.patch(module)
    reporter = _STATE.reporter
    if reporter is not None:
        reporter.library_dirs = (*reporter.library_dirs, integration.library_dir)


def disable() -> None:
    """Remove every patch and stop tracking; sessions already tracked are forgotten."""
    with _STATE.lock:
        _hooks.forget_hooks()
        for integration in _STATE.integrations.values():
            integration.unpatch()
        _STATE.integrations = {}
        TRACKER.stop()
        TRACKER.on_leaks = None
        TRACKER.on_event = None
        TRACKER.sites = None
        _sigterm.uninstall()
        if _STATE.ticker is not None:
            _STATE.ticker.stop()
            _STATE.ticker = None
        _STATE.enabled = False


def is_enabled() -> bool:
    """Whether leakguard is tracking sessions in this process."""
    return _STATE.enabled


def open_sessions() -> list[_report.Leak]:
    """The tracked sessions still open, as records with the fields of the JSON record."""
    return [_report.Leak(record, "open") for record, event in TRACKER.collect_open()
            if event == "exit"]


def _exit_prepare() -> None:
    """First thing at exit: count the connections of the sessions still open."""
    if _STATE.enabled and _STATE.pid == os.getpid() and not TRACKER.done:
        _report.count_connections_now([r for r, e in TRACKER.collect_open() if e == "exit"])


def census() -> list[dict[str, object]]:
    """One dict per (kind, type, creation site) with something open now, largest first."""
    if not _STATE.enabled:
        return []
    return _census.census(TRACKER)


def _exit_report() -> int:
    """Report every session still open, then the summary; the count of reported leaks."""
    with _sigterm.reporting():  # a SIGTERM meanwhile kills the process once it is written
        return _report_open_at_exit()


def _report_open_at_exit() -> int:
    reporter = _STATE.reporter
    if not _STATE.enabled or reporter is None or _STATE.pid != os.getpid() or TRACKER.done:
        return 0
    if _STATE.ticker is not None:  # no census during the exit report and after it
        _STATE.ticker.stop()
    leaks = TRACKER.collect_open(mark_done=True)
    if leaks:
        reporter.leaked(leaks)
    summary = reporter.summary()
    if summary:
        _report.emit(logging.WARNING, summary)
    return len(reporter.leaks) + reporter.pinned


def _after_fork() -> None:
    # The child starts with an empty registry: the parent reports its own sessions.
    with guard("resetting after fork"):
        TRACKER.after_fork()
        reporter = _STATE.reporter
        if reporter is not None:
            reporter.leaks.clear()
            reporter.suppressed.clear()
            reporter.lock = threading.Lock()
        _STATE.pid = os.getpid()
        _sigterm.after_fork()
        _exit.run_exit_report_in_child()
        if _STATE.ticker is not None:
            _STATE.ticker.after_fork()


class check:
    """Context manager and decorator: raise LeakError if a session created inside leaked."""

    def __init__(self) -> None:
        self._claim: _report.Claim | None = None

    def __enter__(self) -> check:
        reporter = _STATE.reporter
        if _STATE.enabled and reporter is not None:
            self._claim = _report.Claim(TRACKER.seq_mark())
            reporter.claims.append(self._claim)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        claim, self._claim = self._claim, None
        if claim is None:
            return
        leaks: list[_report.Leak] = []
        try:
            from ._settle import settle

            # only the records made inside the block, and a collection only if one is open
            still_open, _ = settle(TRACKER, TRACKER.since(claim.start))
            leaks = list(claim.leaks) + [_report.Leak(r, "open") for r in still_open]
            TRACKER.forget(still_open)
        except Exception as error:
            internal_error("check()", error)
        finally:
            reporter = _STATE.reporter
            if reporter is not None and claim in reporter.claims:
                reporter.claims.remove(claim)
        if leaks and exc is None:
            raise LeakError(sorted(leaks, key=lambda leak: leak.seq))

    async def __aenter__(self) -> check:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        import inspect

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_checked(*args: Any, **kwargs: Any) -> Any:
                async with check():
                    return await func(*args, **kwargs)

            return async_checked  # type: ignore[return-value]

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            with check():
                return func(*args, **kwargs)

        return checked  # type: ignore[return-value]
