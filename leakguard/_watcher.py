"""SIGTERM in multiprocessing workers: a thread that sees it even while the main thread waits in C.

A Python-level handler runs only between two bytecodes of the main thread. A SIGTERM that
lands just before a worker blocks on its task queue's lock (a C-level wait that does not
return on a signal) would never be handled, and Pool.terminate() would wait for ever. So in
a worker the signal's C handler also writes a byte to a pipe (signal.set_wakeup_fd), which
a daemon thread reads: it writes the report, with a bounded wait, then puts SIGTERM's
default action back at the C level and sends SIGTERM to its own process, which dies exactly
as it would have (-15). When the main thread runs the Python-level handler too, that one
only starts a thread that does the same; whichever comes first does the work, once.

Where this cannot be set up (the program has a wakeup fd of its own, no threads), the
worker keeps SIGTERM's default action, as without leakguard.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

# _sigterm's: whether its handler is SIGTERM's now, and what to do at SIGTERM, off the
# main thread (passed in: this module sits below _sigterm)
_calls: list[tuple[Callable[[], bool], Callable[[], None]]] = []
_state: list[tuple[int, int, int]] = []  # (pid, read end, write end) of this process's pipe
_worker_pid: list[int] = []  # set in a multiprocessing worker (its pid)


def in_workers(ours: Callable[[], bool], handle: Callable[[], None]) -> None:
    """On multiprocessing's import: watch in each worker it starts (fork, spawn, forkserver).

    `ours()`: whether leakguard's handler is SIGTERM's; `handle()`: SIGTERM, off the main
    thread.
    """
    _calls[:] = [(ours, handle)]
    if sys.argv[1:2] == ["--multiprocessing-fork"]:  # a spawned worker, being started
        _worker_starts(None)
    from multiprocessing import util

    # run in every new worker by Process._bootstrap (fork and forkserver workers are forked
    # from a process that registered this; a spawned one registers it itself, just above)
    util.register_after_fork(_WorkerMarker, _worker_starts)


class _WorkerMarker:
    """A weakly referenceable key for multiprocessing's after-fork registry."""


def is_worker() -> bool:
    """Whether this process is a multiprocessing worker (where the watcher belongs)."""
    return _worker_pid == [os.getpid()]


def watching() -> bool:
    """Whether this process's watcher runs (SIGTERM is then handled off the main thread)."""
    return bool(_state) and _state[0][0] == os.getpid()


def _worker_starts(_: object) -> None:
    with guard("watching SIGTERM in a worker"):
        _worker_pid[:] = [os.getpid()]
        start()


def start() -> None:
    """Start this process's watcher, or leave SIGTERM's default action if it cannot run."""
    if not _calls:
        return
    if threading.current_thread() is not threading.main_thread() or not _calls[0][0]():
        return  # a program's own SIGTERM handler: nothing of ours to watch for
    if watching():
        return
    r, w = os.pipe()
    try:
        os.set_blocking(w, False)  # the C handler must never block on a full pipe
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError):
        _close(r, w)
        _default_action()
        return
    if previous != -1:
        # the program's own wakeup fd: never replace it. Without a watcher, our handler
        # might never run (see above): keep the default action, as without leakguard
        signal.set_wakeup_fd(previous)
        _close(r, w)
        _default_action()
        return
    try:
        threading.Thread(target=_watch, args=(r,), name="leakguard-sigterm-watch",
                         daemon=True).start()
    except RuntimeError:  # no new threads (the interpreter is shutting down)
        signal.set_wakeup_fd(-1)
        _close(r, w)
        _default_action()
        return
    _state[:] = [(os.getpid(), r, w)]


def stop() -> None:
    """Stop watching (leakguard.disable() in a worker; main thread only)."""
    if not _state or _state[0][0] != os.getpid():
        return
    w = _state.pop()[2]
    _unset(w)
    _close(w)  # the watcher reads the end of the pipe, closes its end and stops


def after_fork() -> None:
    """In a forked child: the parent's pipe is not ours, its watcher thread is gone."""
    if not _state or _state[0][0] == os.getpid():
        return
    _, r, w = _state.pop()
    _unset(w)
    _close(r, w)


def _unset(w: int) -> None:
    # no wakeup fd any more, unless the program has set its own since: that one stays
    try:
        previous = signal.set_wakeup_fd(-1)
        if previous not in (w, -1):
            signal.set_wakeup_fd(previous)
    except ValueError:  # not the main thread
        pass


def _watch(r: int) -> None:
    handle = _calls[0][1]
    term = bytes([signal.SIGTERM])
    try:
        while True:
            data = os.read(r, 512)  # every signal with a Python-level handler writes a byte
            if not data:
                return  # stop(): the write end is closed
            if term in data:
                handle()
    except OSError:
        return
    finally:
        _close(r)


def _default_action() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def default_action_from_any_thread() -> bool:
    """Make SIGTERM's action the default one at the C level; Python allows it in the main
    thread only. Python's table keeps our handler, which no signal reaches any more."""
    try:
        import ctypes

        setsig = ctypes.pythonapi["PyOS_setsig"]  # a fresh function object: ours to type
        setsig.argtypes = (ctypes.c_int, ctypes.c_void_p)
        setsig.restype = ctypes.c_void_p
        setsig(int(signal.SIGTERM), int(signal.SIG_DFL) or None)
        return True
    except Exception:  # no ctypes here: the caller exits with a shell's status instead
        return False


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
