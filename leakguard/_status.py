"""`leakguard status`: how leakguard is installed, and whether a new process would be active.

Whether a new process would be active is asked of a new process: a user's own
sitecustomize, a leakguard reachable only through PYTHONPATH (no startup hook) or a startup
that fails all decide it in ways that reading files here cannot see for certain.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys

from . import _install
from ._config import TRUTHY, OptionError, Options, bad_value, parse_switch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    Probe = Optional[dict[str, object]]

# a line of the user's own that switches leakguard on (`import leakguard.auto` and its kin)
_AUTO_LINE = re.compile(r"^[ \t]*(import[ \t]+leakguard\.auto\b|from[ \t]+leakguard[ \t]+"
                        r"import[ \t]+auto\b)", re.MULTILINE)
_PROBE = (
    "import json, sys\n"
    "api = sys.modules.get('leakguard._api')\n"
    "mods = {n: getattr(sys.modules.get(n), '__file__', None)\n"
    "        for n in ('sitecustomize', 'usercustomize', 'leakguard')}\n"
    "print(json.dumps({'active': bool(api is not None and api.is_enabled()), **mods}))\n"
)


def _hook_files() -> list[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    found = []
    for d in dirs:
        for name in ("leakguard.pth", "leakguard.start"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                found.append(path)
    return found


def probe() -> Probe:
    """Start a Python process here, as the user would, and ask it; None if that fails."""
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], env=dict(os.environ),
                             capture_output=True, text=True, timeout=120)
        data = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return data if isinstance(data, dict) else None


def own_line(probed: Probe) -> str | None:
    """The user's own sitecustomize/usercustomize that imports leakguard.auto, if any."""
    for name in ("sitecustomize", "usercustomize"):
        path = probed.get(name) if probed else None
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if _install.BEGIN in text:  # ours: leave the block out, look at the user's lines
            text = text.split(_install.BEGIN)[0] + text.split(_install.END)[-1]
        if _AUTO_LINE.search(text):
            return path
    return None


def _library_versions() -> list[str]:

    from .integrations import all_integrations

    targets: tuple[str, ...] | None = None
    raw = os.environ.get("LEAKGUARD_TARGETS")
    lines = []
    try:
        targets = Options(targets=raw).targets if raw is not None else None
    except OptionError as exc:  # a process ignores a bad value too, and says so: as here
        lines.append("  " + bad_value("LEAKGUARD_TARGETS", str(raw), exc.accepted))
    owners = _owners()
    for integration in all_integrations().values():
        supported = f"(supported: {integration.supported_range()})"
        found = _installed(integration.module, owners.get(integration.module, []))
        if found is None:
            lines.append(f"  {integration.name:<9} not installed {supported}")
            continue
        dist, version = found
        if dist.lower().replace("_", "-") != integration.module:
            supported = f"(as {dist}; supported: {integration.supported_range()})"
        if targets is not None and integration.name not in targets:
            verdict = f"NOT tracked: LEAKGUARD_TARGETS={raw} leaves it out"
        elif integration.supports(version):
            verdict = "tracked"
        else:
            verdict = "NOT tracked: outside the supported range"
        lines.append(f"  {integration.name:<9} {version:<10} {verdict} {supported}")
    return lines


def _owners() -> dict[str, list[str]]:
    """Top-level module name -> the distributions that install it."""
    from importlib import metadata

    mapping = getattr(metadata, "packages_distributions", None)
    if mapping is not None:
        return mapping()  # type: ignore[no-any-return]
    found: dict[str, list[str]] = {}  # Python 3.9: what packages_distributions() reads
    for dist in metadata.distributions():
        top = (dist.read_text("top_level.txt") or "").split()
        if not top:
            top = list({str(f).split("/")[0].split(".")[0] for f in dist.files or ()
                        if not str(f).startswith(("..", "/"))})
        for name in top:
            found.setdefault(name, []).append(dist.metadata["Name"])
    return found


def _installed(module: str, dists: list[str]) -> tuple[str, str] | None:
    """(distribution, version) of what `import module` loads, without importing it.

    Another distribution may install the same module name: urllib3-future (niquests')
    is imported as `urllib3`, also over a urllib3 installed before it, whose files it
    replaces. The one whose recorded hash matches the file on disk is the one there.
    """
    from importlib import metadata

    candidates = list(dict.fromkeys([*dists, module]))
    versions = {}
    for name in candidates:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if len(versions) > 1:
        there = _owner_on_disk(module, list(versions))
        if there is not None:
            return there, versions[there]
    for name, version in versions.items():
        return name, version
    return None


def _owner_on_disk(module: str, names: list[str]) -> str | None:
    import base64
    import hashlib
    from importlib import metadata
    from importlib.util import find_spec

    try:
        spec = find_spec(module)
        origin = spec.origin if spec is not None else None
        if not origin:
            return None
        with open(origin, "rb") as f:
            digest = base64.urlsafe_b64encode(hashlib.sha256(f.read()).digest())
    except (ImportError, OSError, ValueError):
        return None
    want = digest.rstrip(b"=").decode("ascii")
    tail = os.path.join(*module.split("."), os.path.basename(origin)).replace(os.sep, "/")
    for name in names:
        for file in metadata.distribution(name).files or ():
            if str(file).replace(os.sep, "/") == tail and file.hash is not None \
                    and file.hash.value == want:
                return name
    return None


def would_be_active(probed: Probe = None) -> tuple[bool, str]:
    """Whether a new Python process here would run leakguard, and why."""
    raw = os.environ.get("LEAKGUARD")
    seen = probed.get("active") if probed else None
    if raw is not None and parse_switch(raw) is None:
        return False, f"LEAKGUARD={raw!r} is not a valid value (leakguard stays off)"
    if raw is not None and not parse_switch(raw):
        return False, f"LEAKGUARD={raw!r} in the environment"
    installed = _install.installed_at()
    own = own_line(probed)
    if raw is not None:
        why = f"LEAKGUARD={raw!r} in the environment"
    elif installed is not None:
        why = f"LEAKGUARD is unset and {installed} switches it on (leakguard install)"
    elif own is not None:
        why = f"LEAKGUARD is unset and your {own} imports leakguard.auto"
    else:
        why = ""
    if seen is None:  # no process could be asked: what the files say
        return bool(why), why or f"LEAKGUARD is unset (set it to one of {', '.join(TRUTHY)})"
    if seen:
        return True, why or "LEAKGUARD is unset, but something in this environment switches " \
                            "leakguard on at start-up"
    if why and not _hook_files() and raw is not None:
        where = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return False, (f"{why}, but leakguard is importable here only through PYTHONPATH "
                       f"({where}): it has no startup hook (leakguard.pth) in this Python, "
                       f"so a new process does not switch it on; `pip install leakguard-http` "
                       f"installs one")
    if why:
        return False, f"{why}, but a new process started here did not switch leakguard on"
    return False, f"LEAKGUARD is unset (set it to one of {', '.join(TRUTHY)})"


def _install_line(probed: Probe) -> str:
    if _install.installed():
        return f"yes, in {_install.target()}"
    if _install.pth_installed():
        return f"yes, by the .pth file {_install.pth_target()}"
    own = own_line(probed)
    if own is not None:
        return f"no, but your own {own} imports leakguard.auto"
    return "no"


def status() -> str:
    """The report `leakguard status` prints."""
    from ._dist import DIST, version

    where = os.path.dirname(os.path.abspath(__file__))
    lines = [f"leakguard {version()} ({DIST}) in {sys.prefix} (Python "
             f"{sys.version.split()[0]}), imported from {where}"]
    hooks = _hook_files()
    lines.append("startup hook (LEAKGUARD=1): " + (", ".join(hooks) if hooks else
                                                   "none in this Python"))
    probed = probe()
    lines.append(f"leakguard install: {_install_line(probed)}")
    active, why = would_be_active(probed)
    lines.append(f"a Python process started here would be {'ACTIVE' if active else 'dormant'}: "
                 f"{why}")
    lines.append("integrations:")
    lines.extend(_library_versions())
    return "\n".join(lines)
