"""LEAKGUARD_SIGTERM: the exit report when SIGTERM ends a program that has no handler for it."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Callable

REPORT_TIMEOUT = 10.0  # seconds the report may take before the process dies anyway

_report: list[Callable[[], object]] = []  # the exit report; empty while switched off
_once = [threading.Lock()]  # taken by whichever handles SIGTERM first (see _take)
_holder: list[str] = []  # which one took it: "main" or "thread" (off the main thread)
_in_report: list[bool] = []  # non-empty while an exit report runs
_pending: list[bool] = []  # non-empty when SIGTERM waits for that report to end
_installed_in: list[int] = []  # the pid of the process that installed our handler
_fork_blocked: list[bool] = []  # non-empty while before_fork() holds SIGTERM back
_at_death: list[Callable[[], object]] = []  # run after the report (the pytest run's folder)


def at_death(cleanup: Callable[[], object], add: bool = True) -> None:
    """Run `cleanup` after the report when SIGTERM ends the process (add=False: not any more)."""
    if cleanup in _at_death:
        _at_death.remove(cleanup)
    if add:
        _at_death.append(cleanup)


def install(report: Callable[[], object]) -> bool:
    """Handle SIGTERM if the program does not: only where SIGTERM is still SIG_DFL.

    A handler the program installed before is left alone (we do nothing); one it installs
    later simply replaces ours. Only the main thread of the main interpreter can do this.
    """
    _report[:] = [report]
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # a subinterpreter, or no SIGTERM here
        return False
    _installed_in[:] = [os.getpid()]
    watcher = sys.modules.get("leakguard._watcher")
    if watcher is not None and watcher.is_worker():  # enabled again inside a worker
        watcher.start()
    return True


def uninstall() -> None:
    """Put SIG_DFL back if our handler is still the one in place (main thread only)."""
    _report.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, AttributeError):
        pass
    if "leakguard._watcher" in sys.modules:
        from . import _watcher

        _watcher.stop()


def in_workers(multiprocessing: object) -> None:
    """Watch for SIGTERM in multiprocessing's worker processes (see _watcher)."""
    from . import _watcher

    _watcher.in_workers(installed, on_sigterm_in_thread)


def installed() -> bool:
    """Whether our handler is SIGTERM's handler now."""
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


def before_fork() -> None:
    """Hold SIGTERM back in the forking thread while it forks (os.register_at_fork).

    A new child's Python clears the signals that reached it before its after-fork hooks:
    with a Python-level handler, a SIGTERM sent to a child that early (Pool.terminate()
    just after Pool()) would be lost and the child would never die. Blocked, it waits in
    the child until after_fork_unblock(), then is handled.
    """
    with guard("holding SIGTERM back while forking"):
        if installed():
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            if signal.SIGTERM not in held:  # else the program blocks it itself: it stays so
                _fork_blocked.append(True)


def after_fork_unblock() -> None:
    """After a fork, in the parent and in the child: let SIGTERM through again."""
    if _fork_blocked:
        _fork_blocked.clear()
        with guard("letting SIGTERM through after forking"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def after_fork() -> None:
    """In a forked child: nobody is handling SIGTERM here yet; the parent's watcher is gone."""
    _once[:] = [threading.Lock()]
    _holder.clear()
    if "leakguard._watcher" in sys.modules:
        from . import _watcher

        _watcher.after_fork()


class reporting:
    """Around every exit report: a SIGTERM that arrives meanwhile waits for its end, then kills."""

    def __enter__(self) -> None:
        if _holder[:1] == ["thread"] and _in_main_thread():
            # a worker ending while a thread of ours writes the report at SIGTERM: wait for
            # it to end the process rather than exit first and cut that report short
            time.sleep(REPORT_TIMEOUT + 2)
            _die()
        _in_report.append(True)

    def __exit__(self, *exc: object) -> None:
        if _in_report:
            _in_report.pop()
        if _pending and not _in_report:
            _die()


def _take(who: str) -> bool:
    """Whether `who` is the one to handle this SIGTERM (never blocks: a handler may nest)."""
    if not _once[0].acquire(blocking=False):
        return False
    _holder.append(who)
    return True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Runs in the main thread between two bytecodes, wherever it was. The main thread
    # waits here for the report (written by a thread of its own, REPORT_TIMEOUT at most),
    # so that the program does nothing more after SIGTERM, as with the default action;
    # unless it was interrupted inside code that holds a lock the report needs.
    watcher = sys.modules.get("leakguard._watcher")
    if (_installed_in[:1] != [os.getpid()] or (watcher is not None and watcher.watching())
            or _holds_a_lock_we_need(frame)):
        # A worker (or any forked child), or code that may hold such a lock: a thread does
        # it all, as the watcher does when the main thread is stuck in C. The main thread
        # runs on meanwhile and releases the locks it may hold (the tracker's, logging's,
        # threading's while it forks or starts a thread), which the report needs; so this
        # handler takes none (a low-level thread: threading.Thread.start takes one).
        try:
            _thread.start_new_thread(on_sigterm_in_thread, ())
            return
        except RuntimeError:  # no new threads: do it here
            pass
    if not _take("main"):
        # a second SIGTERM while the first one's report runs: that one dies after it; or a
        # worker's thread is on it: it ends the process once the report is written
        return
    _handle()


# The code whose locks the report takes: leakguard's own (the tracker's lock, around every
# creation and close), logging's (a handler's lock around emit) and threading's (starting a
# thread). Python code of the program itself holds no lock of theirs.
_LOCKING = frozenset(("leakguard", "logging", "threading"))


def _holds_a_lock_we_need(frame: FrameType | None) -> bool:
    """Whether the interrupted main thread is inside code that may hold a lock of the report's."""
    try:
        while frame is not None:
            name = frame.f_globals.get("__name__")
            if isinstance(name, str) and name.partition(".")[0] in _LOCKING:
                return True
            frame = frame.f_back
    except Exception:  # an odd frame or globals: the safe side
        return True
    return False


def on_sigterm_in_thread() -> None:
    """SIGTERM handled off the main thread (a worker's), which may be stuck in C."""
    with guard("the report at SIGTERM"):
        if not installed() or not _take("thread"):
            return  # the program's own handler now, or another thread is on it already
        _handle()


def _handle() -> None:
    if _in_report:
        # the exit report is running (at exit, in the main thread we interrupted, or in a
        # worker ending): let it finish, then die of SIGTERM (see reporting.__exit__)
        _pending.append(True)
        if _in_main_thread():
            return
        deadline = time.monotonic() + REPORT_TIMEOUT
        while _in_report and time.monotonic() < deadline:
            time.sleep(0.02)
        _die()
    with guard("the report at SIGTERM"):
        if _report:
            report = _report[0]
            try:
                worker = threading.Thread(target=_run, args=(report,),
                                          name="leakguard-sigterm", daemon=True)
                worker.start()
            except RuntimeError:  # the interpreter is shutting down: no new threads
                _run(report)
            else:
                worker.join(REPORT_TIMEOUT)
    for cleanup in list(_at_death):
        with guard("cleaning up at SIGTERM"):
            cleanup()
    _die()


def _in_main_thread() -> bool:
    # not threading.current_thread(): in a low-level thread it makes a _DummyThread, under
    # a lock the interrupted main thread may hold
    return threading.get_ident() == threading.main_thread().ident


def _run(report: Callable[[], object]) -> None:
    with guard("the report at SIGTERM"):
        report()


def _die() -> None:
    """Die of SIGTERM exactly as the default action would have: the parent sees -15 / 143."""
    try:
        sys.stderr.flush()  # the report; stdout's buffer is lost, as it would have been
    except Exception:  # closed or broken: nothing more to say
        pass
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread: a worker's watcher, or an exit report elsewhere
        from . import _watcher

        if not _watcher.default_action_from_any_thread():
            os._exit(128 + signal.SIGTERM)  # the status a shell would show
    os.kill(os.getpid(), signal.SIGTERM)
    # SIGTERM blocked in this thread's mask: it is pending, and another thread may take it
    time.sleep(0.5)
    os._exit(128 + signal.SIGTERM)
