"""Where reports go: the `leakguard` logger, or stderr when no handler can show them."""

from __future__ import annotations

import logging
import sys

from ._guard import internal_error

logger = logging.getLogger("leakguard")

_PREFIX = "leakguard: "
_level_set: list[int] = []  # the level enable() gave the `leakguard` logger, if it did


def set_level(level: int) -> None:
    """Let the `leakguard` logger pass `level` whatever the root logger's level, unless the
    program configured that logger itself (a level leakguard did not set)."""
    if logger.level == logging.NOTSET or logger.level in _level_set:
        logger.setLevel(level)
        _level_set[:] = [level]


def emit(level: int, text: str) -> None:
    """Log through the `leakguard` logger, or write to stderr when no handler can show it.

    Through logging the message goes without its `leakguard: ` prefix, which the logger's
    name already gives (`WARNING:leakguard:requests.Session ...`); on stderr it keeps it.
    """
    handlers = _live_handlers()
    if handlers:
        if not logger.isEnabledFor(level):
            return
        message = text[len(_PREFIX):] if text.startswith(_PREFIX) else text
        try:
            _handle(handlers, level, message)
            return
        except Exception as exc:  # a filter or handler that raises: say so once, use stderr
            internal_error("logging a report (it goes to stderr instead)", exc)
    if level >= logging.WARNING or logger.isEnabledFor(level):
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:  # stderr closed: nowhere left to say it
            pass


def _handle(handlers: list[logging.Handler], level: int, message: str) -> None:
    # What Logger.log does, minus the handlers that cannot write: a handler bound to a
    # closed stream would print a "--- Logging error ---" block per report instead.
    fn, lno, func, _ = logger.findCaller()
    record = logger.makeRecord(logger.name, level, fn, lno, message, (), None, func)
    if logger.disabled or not logger.filter(record):
        return
    for handler in handlers:
        if level >= handler.level:
            handler.handle(record)


def _live_handlers() -> list[logging.Handler]:
    # The handlers a record of the `leakguard` logger reaches, those that can still write:
    # logging.shutdown() closes handlers without removing them, and a program may close
    # the stream of a handler it left in place (pytest's capture, for one).
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(h for h in current.handlers if not _dead(h))
        if not current.propagate:
            break
        current = current.parent
    return found


def _dead(handler: logging.Handler) -> bool:
    if getattr(handler, "_closed", False):
        return True
    try:
        return bool(getattr(getattr(handler, "stream", None), "closed", False))
    except Exception:  # a stream whose `closed` raises cannot be trusted either
        return True
