"""The end of a process: the exit report, the leak exit status, and forked children."""

from __future__ import annotations

import atexit
import builtins
import logging
import os
import sys
import threading

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_requested: list[object] = []  # what the program passed to sys.exit() / exit() / quit()


class _RecordingExit:
    """Wraps sys.exit (and the exit/quit builtins) to learn the status the program asked for."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original

    def __call__(self, code: object = None) -> Any:
        _requested.append(code)
        return self.original(code)

    def __repr__(self) -> str:
        return repr(self.original)


def record_exit_requests() -> None:
    """Learn the exit status the program requests, for LEAKGUARD_EXITCODE."""
    if not isinstance(sys.exit, _RecordingExit):
        sys.exit = _RecordingExit(sys.exit)
    for name in ("exit", "quit"):
        current = getattr(builtins, name, None)
        if current is not None and not isinstance(current, _RecordingExit):
            setattr(builtins, name, _RecordingExit(current))


def would_exit_zero() -> bool:
    """Whether the process is about to exit with status 0, as far as Python can tell."""
    if getattr(sys, "last_exc", None) is not None or getattr(sys, "last_value", None) is not None:
        return False  # an uncaught exception was printed: the status is 1
    if not _requested:
        return True
    code = _requested[-1]
    return code is None or code == 0


def register(report: Callable[[], int | None], exitcode: Callable[[], int | None]) -> None:
    """Run `report` at exit before every other atexit handler, then apply the exit status."""

    def at_exit() -> None:
        status = None
        with guard("the exit report"):
            leaked = report()
            code = exitcode()
            if leaked and code is not None and would_exit_zero():
                status = code
        if status is not None:
            _exit_now(at_exit, status)

    # atexit runs last-registered first. Registering now puts us after logging (imported
    # above) and after every handler registered so far; re-registering when threads shut
    # down, just before atexit runs, puts us after the rest: the pools are still open.
    atexit.unregister(at_exit)
    atexit.register(at_exit)

    def last_moment() -> None:
        atexit.unregister(at_exit)
        atexit.register(at_exit)

    register_at_thread_shutdown = getattr(threading, "_register_atexit", None)
    if register_at_thread_shutdown is not None:
        try:
            register_at_thread_shutdown(last_moment)
        except RuntimeError:  # already shutting down
            pass
    _STATE_AT_EXIT[:] = [at_exit]


_STATE_AT_EXIT: list[Callable[[], None]] = []


def run_exit_report_in_child() -> None:
    """In a forked child: run the exit report when multiprocessing ends it with os._exit()."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or not _STATE_AT_EXIT:
        return
    handler = _STATE_AT_EXIT[0]

    def install(_: object) -> None:
        util.Finalize(None, handler, exitpriority=100)

    # multiprocessing clears its finalizers in the new process, then runs its after-fork
    # callbacks: register there, so the report runs in its _exit_function()
    util.register_after_fork(_ForkMarker, install)


class _ForkMarker:
    """A weakly referenceable key for multiprocessing's after-fork registry."""


def _exit_now(handler: Callable[[], None], status: int) -> None:
    # Our handler runs first; run every other atexit handler once, as the interpreter
    # would have, then leave with the leak status (atexit cannot change it otherwise).
    atexit.unregister(handler)
    with guard("running the other exit handlers"):
        atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
