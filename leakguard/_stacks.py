"""Cheap creation-stack capture now (code objects and line numbers), formatting later."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import CodeType, FrameType

    # innermost frame first, as captured
    Stack = tuple[tuple[CodeType, int], ...]

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_SITE_DIRS = ("site-packages", "dist-packages")


def capture(depth: int, skip: int = 1) -> Stack:
    """The calling stack as (code, line) pairs, innermost first, without formatting anything."""
    try:
        frame: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return ()
    out: list[tuple[CodeType, int]] = []
    while frame is not None and len(out) < depth:
        out.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return tuple(out)


def _internal_dirs() -> tuple[str, ...]:
    """Directories whose frames a report hides: leakguard's own and wrapt's."""
    dirs = [_HERE]
    wrapt = sys.modules.get("wrapt")
    wrapt_file = getattr(wrapt, "__file__", None)
    if wrapt_file:
        dirs.append(os.path.dirname(os.path.abspath(wrapt_file)) + os.sep)
    return tuple(dirs)


def abspath(filename: str) -> str:
    """The absolute path of a code object's file name (pseudo-files like <string> as is)."""
    return filename if filename.startswith("<") else os.path.abspath(filename)


class Frame:
    """One formatted frame: file, line, function, module and source line."""

    __slots__ = ("code", "file", "function", "line", "module")

    def __init__(self, file: str, line: int, function: str, module: str, code: str) -> None:
        self.file = file
        self.line = line
        self.function = function
        self.module = module
        self.code = code

    def as_dict(self) -> dict[str, object]:
        """The frame as in a JSON Lines record."""
        return {"file": self.file, "line": self.line, "function": self.function,
                "code": self.code}


def _module_names() -> dict[str, str]:
    names: dict[str, str] = {}
    # the interpreter deletes __main__.__file__ once the script ends: the exit report
    # finds the script through sys.argv[0] instead
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 and not argv0.startswith("-") and os.path.isfile(argv0):
        names[os.path.abspath(argv0)] = "__main__"
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if isinstance(file, str):
            names.setdefault(file, name)
    return names


def frames(stack: Stack) -> list[Frame]:
    """The user-visible frames of a stack, outermost first, source lines read now."""
    import linecache

    hidden = _internal_dirs()
    modules = _module_names()
    out = []
    for code, line in reversed(stack):
        path = abspath(code.co_filename)
        if path.startswith(hidden):
            continue
        source = linecache.getline(code.co_filename, line).strip()
        out.append(Frame(code.co_filename, line, code.co_name,
                         modules.get(code.co_filename, ""), source))
    return out


def format_stack(stack: Stack, header: str) -> str:
    """The stack in Python's traceback layout, innermost call last."""
    return format_frames(frames(stack), header)


def format_frames(found: list[Frame], header: str) -> str:
    """Formatted frames in Python's traceback layout, innermost call last."""
    lines = [f"{header} (most recent call last):"]
    for f in found:
        lines.append(f'  File "{f.file}", line {f.line}, in {f.function}')
        if f.code:
            lines.append(f"    {f.code}")
    return "\n".join(lines)


def is_library(path: str, library_dirs: Iterable[str]) -> bool:
    """True for frames of the client libraries, wrapt, leakguard or the standard library."""
    path = abspath(path)
    if path.startswith("<frozen"):
        return True  # importlib's bootstrap and friends; <string> and <stdin> are the user's
    if path.startswith(_internal_dirs()) or path.startswith(tuple(library_dirs)):
        return True
    return path.startswith(_STDLIB) and not any(d in path for d in _SITE_DIRS)


def site(stack: Stack, library_dirs: Iterable[str]) -> tuple[str, int, str]:
    """The creation site: the innermost frame outside the libraries (else the innermost)."""
    dirs = tuple(library_dirs)
    for code, line in stack:
        if not is_library(code.co_filename, dirs):
            return code.co_filename, line, code.co_name
    if stack:
        code, line = stack[0]
        return code.co_filename, line, code.co_name
    return "<unknown>", 0, "<unknown>"
