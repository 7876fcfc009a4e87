"""Captured stacks formatted for reports: frames, source lines (secrets masked), layout."""

from __future__ import annotations

import os
import sys

from ._masking import masked
from ._stacks import _internal_dirs, abspath, pairs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._stacks import Stack


def _launchers() -> tuple[str, ...]:
    """Files of the frames that only launched the program: runpy's (`python -m module`)."""
    runpy = sys.modules.get("runpy")
    file = getattr(runpy, "__file__", None)
    return ("<frozen runpy>", os.path.abspath(file)) if file else ("<frozen runpy>",)


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
        try:  # its own dict, read past any __getattr__/__getattribute__: a lazy module stays lazy
            file = object.__getattribute__(mod, "__dict__").get("__file__")
        except Exception:  # no __dict__, or not a dict
            continue
        if isinstance(file, str):
            names.setdefault(file, name)
    return names


def frames(stack: Stack) -> list[Frame]:
    """The user-visible frames of a stack, outermost first, source lines read now."""
    import linecache

    hidden = _internal_dirs()
    launchers = _launchers()
    modules = _module_names()
    out = []
    for code, line in reversed(list(pairs(stack))):
        path = abspath(code.co_filename)
        if path.startswith(hidden) or path in launchers:
            continue
        source = masked(linecache.getline(code.co_filename, line).strip())
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
