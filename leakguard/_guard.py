"""The one guard around leakguard's own logic: internal errors never reach the host."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Callable

# Our own test suite sets this to collect swallowed errors and fail the test.
on_error: Callable[[str, BaseException], None] | None = None
_said: set[str] = set()


class guard:
    """Context manager that swallows and reports, once per place, any Exception raised inside."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # KeyboardInterrupt and SystemExit belong to the program
        internal_error(self.where, exc)
        return True


def internal_error(where: str, exc: BaseException) -> None:
    """Say once on stderr what leakguard could not do; never raise."""
    try:
        hook = on_error
        if hook is not None:
            hook(where, exc)
        if where in _said:
            return
        _said.add(where)
        sys.stderr.write(
            f"leakguard: internal error in {where}: {type(exc).__name__}: {exc} "
            "(leakguard carries on; please report this)\n"
        )
    except Exception:
        pass
