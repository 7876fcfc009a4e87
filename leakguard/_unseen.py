"""Wrappers under a file name that CPython's warnings skip: a library's warning keeps its place."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


# CPython's warnings (the C _warnings and warnings.py alike, 3.9 to 3.13) take a frame whose
# file name contains both "importlib" and "_bootstrap" for the import system's and, walking up
# for a stacklevel above 1, skip it without counting it. The wrappers get such a name, so a
# library's warnings.warn(..., stacklevel=2) in a patched __init__ or close names its caller's
# line as it would without leakguard, and the program's filterwarnings rules keep matching.
# Tracebacks show the wrapper frame under that name, with its source line (linecache is
# given the file's lines under it); the C printer of 3.9-3.12 prints no source line for it.
_SUFFIX = " [a wrapper, named for importlib._bootstrap: warnings skip it]"


def unseen_by_warnings(function: F) -> F:
    """The wrapper function under a file name that warnings skip (see _SUFFIX)."""
    code = function.__code__
    if code.co_filename.endswith(_SUFFIX):
        return function
    name = code.co_filename + _SUFFIX
    function.__code__ = code.replace(co_filename=name)
    import linecache

    if name not in linecache.cache:
        try:
            with open(code.co_filename, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError:  # no source shipped: tracebacks show the frame without its line
            return function
        # no modification time: linecache.checkcache() keeps the entry
        linecache.cache[name] = (sum(map(len, lines)), None, lines, name)
    return function
