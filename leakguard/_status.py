"""`leakguard status`: which hooks are installed and whether this process would be active."""

from __future__ import annotations

import os
import site
import sys

from . import _install
from ._config import TRUTHY, parse_switch


def _hook_files() -> list[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    found = []
    for d in dirs:
        for name in ("leakguard.pth", "leakguard.start"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                found.append(path)
    return found


def _library_versions() -> list[str]:
    from importlib import metadata

    from .integrations import all_integrations

    lines = []
    for integration in all_integrations().values():
        try:
            version = metadata.version(integration.module)
        except metadata.PackageNotFoundError:
            lines.append(f"  {integration.name:<9} not installed "
                         f"(supported: {integration.supported_range()})")
            continue
        verdict = ("tracked" if integration.supports(version)
                   else "NOT tracked: outside the supported range")
        lines.append(f"  {integration.name:<9} {version:<10} {verdict} "
                     f"(supported: {integration.supported_range()})")
    return lines


def would_be_active() -> tuple[bool, str]:
    """Whether a new Python process here would run leakguard, and which setting decides."""
    raw = os.environ.get("LEAKGUARD")
    installed = _install.installed()
    if raw is not None:
        value = parse_switch(raw)
        if value is None:
            return False, f"LEAKGUARD={raw!r} is not a valid value (leakguard stays off)"
        return value, f"LEAKGUARD={raw!r} in the environment"
    if installed:
        return True, f"LEAKGUARD is unset and {_install.target()} has the leakguard block"
    return False, f"LEAKGUARD is unset (set it to one of {', '.join(TRUTHY)})"


def status() -> str:
    """The report `leakguard status` prints."""
    from . import __version__

    lines = [f"leakguard {__version__} in {sys.prefix} (Python {sys.version.split()[0]})"]
    hooks = _hook_files()
    lines.append("startup hook (LEAKGUARD=1): " + (", ".join(hooks) if hooks else "not found"))
    installed = _install.installed()
    lines.append(f"sitecustomize install: {'yes' if installed else 'no'} "
                 f"({_install.target()})")
    active, why = would_be_active()
    lines.append(f"a Python process started here would be {'ACTIVE' if active else 'dormant'}: "
                 f"{why}")
    lines.append("integrations:")
    lines.extend(_library_versions())
    return "\n".join(lines)
