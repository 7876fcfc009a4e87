"""`leakguard install` / `uninstall`: a marked block in the environment's sitecustomize.py,
or, where Python imports another sitecustomize.py first (Debian's and Ubuntu's system Python
put one in /usr/lib/python3.X), a leakguard-install.pth file in the environment's site-packages.
"""

from __future__ import annotations

import glob
import os
import subprocess
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


PTH_NAME = "leakguard-install.pth"
# site.py runs a .pth line that starts with `import`; after `pip uninstall leakguard-http`
# the file stays behind (pip did not install it) and must start up silently.
PTH_TEXT = (
    "# leakguard is active in every Python process of this environment; LEAKGUARD=0 turns it\n"
    "# off for one process. Written by `leakguard install`; `leakguard uninstall` removes it.\n"
    'import sys; exec("try:\\n import leakguard.auto\\nexcept ImportError:\\n pass")\n'
)
# what a new interpreter of this environment says about its sitecustomize: the module Python
# imports at start-up is the first `sitecustomize` on sys.path as site.py leaves it
_PROBE = (
    "import sys, importlib.machinery as m\n"
    "path = sys.path if getattr(sys.flags, 'safe_path', False) else sys.path[1:]\n"
    "spec = m.PathFinder.find_spec('sitecustomize', path)\n"
    "print(spec.origin if spec is not None and spec.origin else '')\n"
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
    tmp = os.path.join(folder, f".{os.path.basename(path)}.leakguard-{os.getpid()}")
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


def pth_target() -> str:
    """The .pth file that install writes where it cannot use sitecustomize.py."""
    return os.path.join(site_packages(), PTH_NAME)


def imported_sitecustomize() -> str | None:
    """The sitecustomize a new Python process of this environment imports, if any.

    Asked of a new interpreter (with leakguard switched off in it), since its start-up
    sys.path is not this process's: no script directory, and PYTHONPATH as it is now.
    """
    env = {**os.environ, "LEAKGUARD": "0"}
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[-1] if out.returncode == 0 and lines and lines[-1] else None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def shadowed_by() -> str | None:
    """Another sitecustomize that Python imports instead of the environment's own, if any."""
    found = imported_sitecustomize()
    return None if found is None or _same_file(found, target()) else found


def installed() -> bool:
    """Whether the environment's sitecustomize.py holds the leakguard block."""
    try:
        text = _read(target())
    except InstallError:
        return False
    return text is not None and BEGIN in text


def pth_installed() -> bool:
    """Whether install wrote its .pth file into the environment."""
    return os.path.isfile(pth_target())


def installed_at() -> str | None:
    """Where `leakguard install` put leakguard: the sitecustomize.py or the .pth file."""
    if installed():
        return target()
    return pth_target() if pth_installed() else None


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
    if pth_installed():
        return f"leakguard is already installed in {pth_target()}"
    other = shadowed_by()
    if other is not None:
        return _install_pth(other)
    if text is None:
        _write(path, block(created=True), None)
        return f"created {path}: leakguard is now active in every Python process of " \
               f"{sys.prefix} (LEAKGUARD=0 turns it off for one process)"
    mode = os.stat(path).st_mode & 0o7777
    _write(path, text + block(created=False), mode)
    return f"added leakguard to {path}: it is now active in every Python process of " \
           f"{sys.prefix} (LEAKGUARD=0 turns it off for one process)"


def _install_pth(other: str) -> str:
    pth = pth_target()
    if os.path.lexists(pth):
        raise InstallError(f"{pth} exists and was not written by leakguard install; "
                           "remove it first")
    _write(pth, PTH_TEXT, None)
    return (f"created {pth}: Python imports {other} rather than {target()}, so leakguard is "
            f"activated by this .pth file instead; it is now active in every Python process "
            f"of {sys.prefix} (LEAKGUARD=0 turns it off for one process)")


def _uninstall_pth() -> str | None:
    pth = pth_target()
    if not os.path.lexists(pth):
        return None
    with open(pth, encoding="utf-8", newline="") as f:
        if f.read() != PTH_TEXT:
            raise InstallError(f"{pth} was edited; remove it by hand")
    os.unlink(pth)
    return f"removed {pth}"


def uninstall() -> str:
    """Remove exactly what install added (both ways). Returns what was done, for the user."""
    done = [m for m in (_uninstall_pth(), _uninstall_block()) if m]
    if not done:
        return (f"leakguard is not installed in {target()} nor by {pth_target()}; "
                "nothing to do")
    return "; ".join(done)


def _uninstall_block() -> str | None:
    path = target()
    text = _read(path)
    if text is None or BEGIN not in text:
        return None
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
