"""The startup hook: stdlib only, and nothing imported at all until it is switched on."""

from __future__ import annotations

import os

_ran = False


_FALSY = ("", "0", "false", "no", "off")


def run() -> None:
    """Entry point of leakguard.pth and leakguard.start: active only if LEAKGUARD says so."""
    # the same test as the .pth line (which imports nothing unless it passes)
    if os.environ.get("LEAKGUARD", "").strip().lower() not in _FALSY:
        activate(default=False)


def activate(default: bool) -> None:
    """Switch leakguard on once per process, as LEAKGUARD says (or `default` if unset)."""
    global _ran
    if _ran:
        return  # a .pth seen twice on sys.path, or .pth plus sitecustomize: once is enough
    _ran = True
    try:
        from ._config import switch_from_env

        on = switch_from_env()
        if not (default if on is None else on):
            return
        from ._api import enable, is_enabled

        if not is_enabled():
            enable()  # the options come from the LEAKGUARD_* variables
    except Exception as exc:  # a startup hook that raises would break every interpreter start
        from ._guard import internal_error

        internal_error("the startup hook", exc)
