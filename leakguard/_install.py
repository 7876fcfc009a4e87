"""`leakguard install` / `uninstall`: a marked block in the environment's sitecustomize.py."""

from __future__ import annotations

import glob
import os
import sys
import sysconfig

BEGIN = "# >>> leakguard install >>>"
END = "# <<< leakguard install <<<"
CREATED = "# (this file was created by `leakguard install`)"
BODY = (
    "# leakguard is active in every Python process of this environment; LEAKGUARD=0\n"
    "# turns it off for one process. `leakguard uninstall` removes this block.\n"
    "try:\n"
    "    import leakguard.auto\n"
    "except ImportError:  # leakguard was uninstalled: start up as if this block were not here\n"
    "    pass\n"
)


class InstallError(Exception):
    """Why the environment was left untouched."""


def site_packages() -> str:
    """The environment's site-packages (purelib) directory."""
    return sysconfig.get_paths()["purelib"]


def in_virtualenv() -> bool:
    """Whether this interpreter runs in a virtual environment."""
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix)


def target() -> str:
    """The sitecustomize.py that install edits (or creates) in site-packages."""
    return os.path.join(site_packages(), "sitecustomize.py")


def block(created: bool) -> str:
    """The exact text install appends; uninstall removes exactly this."""
    return f"\n{BEGIN}\n" + (f"{CREATED}\n" if created else "") + BODY + f"{END}\n"


def _read(path: str) -> str | None:
    if os.path.islink(path):
        raise InstallError(f"{path} is a symbolic link; not following it. Add the line "
                           "`import leakguard.auto` to the file it points to instead.")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str, mode: int | None) -> None:
    # A new file beside the target, then an atomic rename: never writes through a link
    # planted at the target, never leaves a half-written sitecustomize.py behind.
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".sitecustomize.py.leakguard-{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666 if mode is None else mode)  # the user's umask applies
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def shadowed_by() -> str | None:
    """Another sitecustomize.py that Python would import instead of ours, if any."""
    ours = os.path.normcase(os.path.abspath(target()))
    for entry in sys.path:
        candidate = os.path.join(entry or os.getcwd(), "sitecustomize.py")
        if os.path.exists(candidate):
            found = os.path.normcase(os.path.abspath(candidate))
            return None if found == ours else candidate
    return None


def installed() -> bool:
    """Whether the environment's sitecustomize.py holds the leakguard block."""
    try:
        text = _read(target())
    except InstallError:
        return False
    return text is not None and BEGIN in text


def install(system: bool = False) -> str:
    """Add the block; a no-op if it is there. Returns what was done, for the user."""
    if not in_virtualenv() and not system:
        raise InstallError(
            f"{sys.prefix} is not a virtual environment: installing would switch leakguard "
            "on for every Python program on this system. Use a virtualenv, or pass --system "
            "if that is what you want.")
    path = target()
    text = _read(path)
    if text is not None and BEGIN in text:
        return f"leakguard is already installed in {path}"
    other = shadowed_by()
    if other is not None:
        raise InstallError(f"Python would import {other} instead of {path}; add the line "
                           f"`import leakguard.auto` to {other} instead.")
    if text is None:
        _write(path, block(created=True), None)
        return f"created {path}: leakguard is now active in every Python process of " \
               f"{sys.prefix} (LEAKGUARD=0 turns it off for one process)"
    mode = os.stat(path).st_mode & 0o7777
    _write(path, text + block(created=False), mode)
    return f"added leakguard to {path}: it is now active in every Python process of " \
           f"{sys.prefix} (LEAKGUARD=0 turns it off for one process)"


def uninstall() -> str:
    """Remove exactly what install added. Returns what was done, for the user."""
    path = target()
    text = _read(path)
    if text is None or BEGIN not in text:
        return f"leakguard is not installed in {path}; nothing to do"
    for created in (True, False):
        added = block(created)
        at = text.find(added)
        if at >= 0:
            rest = text[:at] + text[at + len(added):]
            break
    else:
        raise InstallError(f"the leakguard block in {path} was edited; remove the lines "
                           f"from {BEGIN!r} to {END!r} by hand")
    if created and rest == "":
        os.unlink(path)
        _remove_bytecode(path)
        return f"removed {path} (leakguard had created it)"
    _write(path, rest, os.stat(path).st_mode & 0o7777)
    return f"removed leakguard from {path}"


def _remove_bytecode(path: str) -> None:
    folder = os.path.join(os.path.dirname(path), "__pycache__")
    for pyc in glob.glob(os.path.join(folder, "sitecustomize.*.pyc")):
        os.unlink(pyc)
