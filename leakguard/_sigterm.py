"""LEAKGUARD_SIGTERM: the exit report when SIGTERM ends a program that has no handler for it."""

from __future__ import annotations

import os
import signal
import sys
import threading

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Callable

REPORT_TIMEOUT = 10.0  # seconds the report may take before the process dies anyway

_report: list[Callable[[], object]] = []  # the exit report; empty while switched off
_busy: list[bool] = []  # non-empty once a SIGTERM is being handled
_in_report: list[bool] = []  # non-empty while an exit report runs
_pending: list[bool] = []  # non-empty when SIGTERM waits for that report to end


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


def default_in_workers(multiprocessing: object) -> None:
    """Leave SIGTERM's default action to multiprocessing's worker processes.

    A Python-level handler runs only between bytecodes of the main thread: a SIGTERM that
    lands just before a worker blocks on its queue's lock is never handled, and
    Pool.terminate() (also `with Pool()`) would wait for that worker forever. Workers keep
    the default, as without leakguard; what they drop is still reported when collected.
    """
    if sys.argv[1:2] == ["--multiprocessing-fork"]:  # a spawned worker, being started
        _restore_default(None)
        return
    from multiprocessing import util

    # run in every new forked worker (fork, forkserver) by Process._bootstrap
    util.register_after_fork(_WorkerMarker, _restore_default)


class _WorkerMarker:
    """A weakly referenceable key for multiprocessing's after-fork registry."""


def _restore_default(_: object) -> None:
    with guard("restoring SIGTERM in a worker"):
        if threading.current_thread() is threading.main_thread() and installed():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def installed() -> bool:
    """Whether our handler is SIGTERM's handler now."""
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


class reporting:
    """Around every exit report: a SIGTERM that arrives meanwhile waits for its end, then kills."""

    def __enter__(self) -> None:
        _in_report.append(True)

    def __exit__(self, *exc: object) -> None:
        if _in_report:
            _in_report.pop()
        if _pending and not _in_report:
            _die()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Runs in the main thread between two bytecodes, wherever it was: the report runs in a
    # thread of its own so that a lock the main thread holds (ours, logging's) delays it
    # at most REPORT_TIMEOUT instead of hanging the process.
    if _busy:
        return  # a second SIGTERM while the first one's report runs: that one dies after it
    _busy.append(True)
    if _in_report:
        # the exit report is running (at exit, in the main thread we interrupted, or in a
        # worker ending): let it finish, then die of SIGTERM (see reporting.__exit__)
        _pending.append(True)
        return
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
    _die()


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
    except ValueError:  # not the main thread (an exit report run elsewhere): the status only
        os._exit(128 + signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    # SIGTERM blocked in this thread's mask: it is pending; the status a shell would show
    os._exit(128 + signal.SIGTERM)
