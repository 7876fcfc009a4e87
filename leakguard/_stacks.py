"""Cheap creation-stack capture now (code objects and line numbers), formatting later."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from types import CodeType, FrameType

    # innermost frame first, as captured: code, offset, code, offset, ...
    Stack = tuple[CodeType | int, ...]

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_SITE_DIRS = ("site-packages", "dist-packages")


def capture(depth: int, skip: int = 1, instance: object = None) -> Stack:
    """The calling stack as a flat (code, lasti, code, lasti, ...) tuple, innermost first.

    The instruction offset (f_lasti) is read instead of f_lineno, which the interpreter
    would have to decode from the line table for every frame: that waits for a report.
    With `instance` (the session being constructed), the innermost frames that run its own
    constructor chain (a subclass's `__init__` calling `super().__init__()`) are marked, so
    that site() looks past them: their offset is stored as ~lasti (negative).
    """
    try:
        frame: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return ()
    if instance is None:
        return capture_from(frame, depth)
    out: list[CodeType | int] = []
    append = out.append
    chain = instance is not None
    internal = _internal_dirs() if chain else ()
    while frame is not None and depth:
        code = frame.f_code
        append(code)
        if chain:
            # a constructor whose `self` is the session, or wrapt's pure-Python wrapper
            # between two; the name is tested first: an ordinary caller costs a set lookup
            if code.co_name in _CTOR_NAMES and code.co_argcount:
                chain = frame.f_locals.get(code.co_varnames[0]) is instance
            else:
                chain = code.co_filename.startswith(internal)
            append(~frame.f_lasti if chain else frame.f_lasti)
        else:
            append(frame.f_lasti)
        frame = frame.f_back
        depth -= 1
    return _intern(tuple(out))


def capture_from(frame: FrameType | None, depth: int) -> Stack:
    """The stack from `frame` outwards, as capture() makes it (without a constructor chain)."""
    out: list[CodeType | int] = []
    append = out.append
    while frame is not None and depth:
        append(frame.f_code)
        append(frame.f_lasti)
        frame = frame.f_back
        depth -= 1
    stack = tuple(out)
    n = len(stack)
    if n >= 4:  # _intern()'s lookup, inline: once per response
        known = _INTERNED.get((n, id(stack[0]), stack[1], id(stack[2]), stack[3]))
        if known is not None and known == stack:
            return known
    return _intern(stack)


_CTOR_NAMES = frozenset(("__init__", "__post_init__", "__attrs_post_init__"))


_INTERNED: dict[tuple[object, ...], Stack] = {}
_INTERN_MAX = 4096


def _intern(stack: Stack) -> Stack:
    # Sessions made at one site share one stack object. The key is cheap (ids and offsets
    # of the two innermost frames); equality of the whole stack is checked, by identity
    # element by element, so a different stack that shares the key is never confused.
    # ids of the code objects, values of the offsets (equal offsets are distinct ints)
    n = len(stack)
    key: tuple[object, ...]
    if n >= 4:
        key = (n, id(stack[0]), stack[1], id(stack[2]), stack[3])
    elif n >= 2:
        key = (n, id(stack[0]), stack[1])
    else:
        key = (n,)
    known = _INTERNED.get(key)
    if known is not None and known == stack:
        return known
    if len(_INTERNED) >= _INTERN_MAX:
        _INTERNED.clear()
    _INTERNED[key] = stack
    return stack


def pairs(stack: Stack) -> Iterator[tuple[CodeType, int]]:
    """(code, line) for each captured frame, innermost first; lines computed now."""
    codes: tuple[CodeType, ...] = stack[0::2]  # type: ignore[assignment]
    offsets: tuple[int, ...] = stack[1::2]  # type: ignore[assignment]
    for code, lasti in zip(codes, offsets):
        yield code, line_of(code, ~lasti if lasti < 0 else lasti)


def _chain_flags(stack: Stack) -> Iterator[bool]:
    """For each captured frame, innermost first: whether it runs the session's constructor."""
    for lasti in stack[1::2]:
        yield lasti < 0  # type: ignore[operator]


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of an instruction offset."""
    if lasti < 0:
        return code.co_firstlineno
    lines = getattr(code, "co_lines", None)
    if lines is not None:  # Python 3.10+
        last = code.co_firstlineno
        for start, end, line in lines():
            if line is not None:
                if start <= lasti < end:
                    return int(line)
                if start <= lasti:
                    last = line
        return int(last)
    import dis

    found = code.co_firstlineno
    for offset, line in dis.findlinestarts(code):
        if offset > lasti:
            break
        found = line
    return found


_INTERNAL: list[tuple[str, ...]] = []  # cached once wrapt is imported


def _internal_dirs() -> tuple[str, ...]:
    """Directories whose frames a report hides: leakguard's own and wrapt's."""
    if _INTERNAL:
        return _INTERNAL[0]
    dirs = [_HERE]
    # wrapt's directory, once it is loaded (maybe only its C extension: see _wrapt.py)
    for name in ("wrapt", "wrapt._wrappers"):
        wrapt_file = getattr(sys.modules.get(name), "__file__", None)
        if wrapt_file:
            dirs.append(os.path.dirname(os.path.abspath(wrapt_file)) + os.sep)
            _INTERNAL.append(tuple(dirs))
            break
    return tuple(dirs)


def abspath(filename: str) -> str:
    """The absolute path of a code object's file name (pseudo-files like <string> as is)."""
    return filename if filename.startswith("<") else os.path.abspath(filename)


def is_library(path: str, hidden: Iterable[str] = ()) -> bool:
    """Whether a frame's file is outside the user's code.

    That is: installed packages (a site-packages or dist-packages directory), the standard
    library (this interpreter's, or another's `lib/pythonX.Y/` in a report read later),
    frozen modules, leakguard, wrapt, and any directory in `hidden`.
    """
    path = abspath(path)
    if path.startswith("<"):
        return path.startswith("<frozen")  # <string>, <stdin> and the like are the user's
    if path.startswith((*_internal_dirs(), *hidden)) or path.startswith(_STDLIB):
        return True
    parts = path.replace("\\", "/").split("/")[:-1]
    if any(p in _SITE_DIRS for p in parts):
        return True
    return any(p.startswith("python") and p[6:7].isdigit() and parts[i - 1] in _LIB_DIRS
               for i, p in enumerate(parts) if i)


_LIB_DIRS = ("lib", "lib64")
_LIBRARIES: list[str] = []  # directories of the patched client libraries, wherever installed


def add_library_dir(path: str) -> None:
    """Count a directory as library code (a patched client library outside site-packages)."""
    if path and path not in _LIBRARIES:
        _LIBRARIES.append(path)


def site(stack: Stack, library_dirs: Iterable[str] = ()) -> tuple[str, int, str]:
    """The creation site (file, line, function) used by every grouping leakguard makes.

    The innermost frame outside libraries (is_library) and outside the constructor chain of
    the session's own class; else the innermost outside leakguard, wrapt and that chain;
    else the innermost frame.
    """
    dirs = (*_LIBRARIES, *library_dirs)
    found = [(code, line) for (code, line), in_chain in zip(pairs(stack), _chain_flags(stack))
             if not in_chain]
    for code, line in found:
        if not is_library(code.co_filename, dirs):
            return code.co_filename, line, code.co_name
    internal = _internal_dirs()
    for code, line in found:
        if not abspath(code.co_filename).startswith(internal):
            return code.co_filename, line, code.co_name
    every = list(pairs(stack))
    if every:
        code, line = every[0]
        return code.co_filename, line, code.co_name
    return "<unknown>", 0, "<unknown>"


def site_text(file: str, line: int, function: str) -> str:
    """A site as `file:line in function`: the `site` of JSON records and of the census."""
    return f"{file}:{line} in {function}"


def site_of_frames(stack: Iterable[Mapping[str, object]]) -> tuple[str, int, str]:
    """The site of a JSON record's stack (outermost first) by the same rule as site().

    For a record without a `site` field; its frames do not say which ran the constructor
    chain, so a user subclass's `__init__` may be taken as the site.
    """
    frames = list(stack)
    for frame in reversed(frames):
        if not is_library(str(frame.get("file", ""))):
            return _as_site(frame)
    for frame in reversed(frames):
        if not abspath(str(frame.get("file", ""))).startswith(_internal_dirs()):
            return _as_site(frame)
    return _as_site(frames[-1]) if frames else ("<unknown>", 0, "<unknown>")


def _as_site(frame: Mapping[str, object]) -> tuple[str, int, str]:
    line = frame.get("line")
    return (str(frame.get("file", "<unknown>")), line if isinstance(line, int) else 0,
            str(frame.get("function", "<unknown>")))


def short_path(path: str) -> str:
    """The path relative to the working directory when it is below it, else as is."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
