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
# The wrapper does not see every exit: `raise SystemExit(n)`, and once it came after the
# program started (enable() in its code) a sys.exit looked up before (`sys.exit(main())`
# looks it up before main() runs). CPython removes `__main__.__file__` after a script's last
# line, not when SystemExit ends it: so a script seen running to its end exits 0, one whose
# SystemExit we did not see exits with a status unknown to us (never replaced).
_late: list[bool] = []  # [whether __main__ had a __file__ then] once enabled late
_pid: list[int] = []  # the process that wrapped sys.exit (a forked child's __main__ runs on)
# Under `python -m` / `-c` nothing is removed at the end: there, with sys.monitoring (3.12+),
# the __main__ module's code is watched from its start for its normal return. [False] while
# watched, [True] once it returned (ran to its end); a SystemExit we did not see leaves False
_main_end: list[bool] = []


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
        _pid[:] = [os.getpid()]
        if not _late and _main_running():
            _late.append("__file__" in _main_dict())
        if not _late and not _main_end and sys.argv[:1] in (["-c"], ["-m"]):
            with guard("watching the end of __main__"):
                _watch_main()
    for name in ("exit", "quit"):
        current = getattr(builtins, name, None)
        if current is not None and not isinstance(current, _RecordingExit):
            setattr(builtins, name, _RecordingExit(current))


def would_exit_zero() -> bool:
    """Whether the process is about to exit with status 0, as far as Python can tell."""
    if getattr(sys, "last_exc", None) is not None or getattr(sys, "last_value", None) is not None:
        return False  # an uncaught exception was printed: the status is 1
    if not _requested:
        if _pid[:1] != [os.getpid()]:
            return True  # a forked child: its parent's script is still running
        main = _main_dict()
        if "__file__" in main and main.get("__spec__") is None:
            return False  # a script ended by a SystemExit we did not see: status unknown
        if _main_end:
            return _main_end[0]  # `-m` / `-c`: ran to its end, or a SystemExit unseen
        # run to its end, or (`-m`, `-c`) nothing seen: fine when we were there from the
        # start; else unknown (never replace a possible failure) unless the script ran to
        # its end
        return not _late or (_late[0] and "__file__" not in main)
    code = _requested[-1]
    return code is None or code == 0


def _watch_main() -> None:
    """Before `-m` / `-c` code runs: learn whether __main__'s code returns (sys.monitoring).

    One event per code object that starts until __main__'s does (each disabled at once),
    then one on its return; the tool id is given back then.
    """
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return  # before 3.12: such a status stays unknown (see would_exit_zero)
    tool = next((t for t in (4, 3) if monitoring.get_tool(t) is None), None)
    if tool is None:
        return
    events = monitoring.events

    def started(code: Any, offset: int) -> Any:
        try:
            if (code.co_name == "<module>"
                    and sys._getframe(1).f_globals.get("__name__") == "__main__"):
                monitoring.set_events(tool, 0)
                monitoring.set_local_events(tool, code, events.PY_RETURN)
                return None
        except Exception:  # never in the program's way
            _give_back(monitoring, tool, code)
            _main_end.clear()
            return None
        return monitoring.DISABLE

    def returned(code: Any, offset: int, value: object) -> None:
        _main_end[:] = [True]
        _give_back(monitoring, tool, code)

    monitoring.use_tool_id(tool, "leakguard")
    monitoring.register_callback(tool, events.PY_START, started)
    monitoring.register_callback(tool, events.PY_RETURN, returned)
    _main_end[:] = [False]
    monitoring.set_events(tool, events.PY_START)


def _give_back(monitoring: Any, tool: int, code: Any) -> None:
    try:
        monitoring.set_events(tool, 0)
        monitoring.set_local_events(tool, code, 0)
        monitoring.register_callback(tool, monitoring.events.PY_START, None)
        monitoring.register_callback(tool, monitoring.events.PY_RETURN, None)
        monitoring.free_tool_id(tool)
    except Exception:
        pass


def exiting_with(status: int) -> None:
    """The status the process is about to exit with, as its framework knows it (pytest's)."""
    _requested.append(status)


def _main_dict() -> dict[str, object]:
    main = sys.modules.get("__main__")
    try:
        return dict(object.__getattribute__(main, "__dict__")) if main is not None else {}
    except AttributeError:
        return {}


def _main_running() -> bool:
    # whether the program's own code is on the stack: the startup hook runs from site
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "__main__":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


# atexit up to 3.13 keeps its callbacks in an array that a nested _run_exitfuncs() calls
# and empties in place, so the outer run finds nothing left to call; from 3.14 the outer
# run iterates a copy and would call them all a second time (Modules/atexitmodule.c,
# atexit_callfuncs).
_NESTED_RUN_SAFE = sys.version_info < (3, 14)


def register(report: Callable[[], int | None], exitcode: Callable[[], int | None],
             prepare: Callable[[], None]) -> None:
    """Judge at exit after the program's own atexit handlers, then apply the exit status.

    `prepare` runs before every handler of the program (it counts connections before
    urllib3's finalizers empty the pools); `report` runs once they all ran, so a session
    that one of them closes is not reported.
    """

    def verdict() -> None:
        _verdict(verdict, report, exitcode, prepare if _NESTED_RUN_SAFE else None)

    def in_child() -> None:
        _verdict(None, report, exitcode, None)

    def first() -> None:
        with guard("the exit report"):
            prepare()

    # atexit runs last-registered first. Up to 3.13 the verdict is made the newest handler
    # when threads shut down, just before atexit runs: it runs first and runs every other
    # handler itself, exactly once and in the interpreter's order (whenever they were
    # registered, before or after enable() or logging), then judges. From 3.14 it stays
    # where enable() put it: after every handler registered later (all of the program's
    # with LEAKGUARD=1), before logging.shutdown; `first` is made the newest instead.
    newest = verdict if _NESTED_RUN_SAFE else first
    atexit.register(verdict)
    if newest is first:
        atexit.register(first)

    def last_moment() -> None:
        atexit.unregister(newest)
        atexit.register(newest)

    register_at_thread_shutdown = getattr(threading, "_register_atexit", None)
    if register_at_thread_shutdown is not None:
        try:
            register_at_thread_shutdown(last_moment)
        except RuntimeError:  # already shutting down
            pass
    _STATE_AT_EXIT[:] = [in_child, verdict, first]


def _verdict(handler: Callable[[], None] | None, report: Callable[[], int | None],
             exitcode: Callable[[], int | None], prepare: Callable[[], None] | None) -> None:
    shutdown: Callable[[], None] | None = None
    if prepare is not None and handler is not None:
        with guard("the exit report"):
            prepare()
        # Run the program's handlers now, keeping logging open for the report that follows
        # (logging.shutdown is itself one of them).
        atexit.unregister(handler)
        shutdown = getattr(sys.modules.get("logging"), "shutdown", None)
        if shutdown is not None:
            atexit.unregister(shutdown)
        with guard("running the program's exit handlers"):
            atexit._run_exitfuncs()
    status = None
    with guard("the exit report"):
        leaked = report()
        code = exitcode()
        if leaked and code is not None and would_exit_zero():
            status = code
    if status is not None:
        _exit_now(status)
    if shutdown is not None:
        with guard("shutting logging down"):
            shutdown()


_STATE_AT_EXIT: list[Callable[[], None]] = []


def run_exit_report_in_child() -> None:
    """In a forked child: run the exit report when multiprocessing ends it with os._exit()."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or not _STATE_AT_EXIT:
        return
    handler = _STATE_AT_EXIT[0]  # the verdict without the parent's atexit handlers

    def install(_: object) -> None:
        util.Finalize(None, handler, exitpriority=100)

    # multiprocessing clears its finalizers in the new process, then runs its after-fork
    # callbacks: register there, so the report runs in its _exit_function()
    util.register_after_fork(_ForkMarker, install)


class _ForkMarker:
    """A weakly referenceable key for multiprocessing's after-fork registry."""


def _exit_now(status: int) -> None:
    # Leave with the leak status (atexit cannot change it otherwise). Every handler of the
    # program has run by now, except, from 3.14, those registered before enable().
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
