"""leakguard: a runtime sanitizer for leaked HTTP client sessions.

Importing leakguard patches nothing; `leakguard.enable()` (or LEAKGUARD=1) switches it on.

PYTEST_DONT_REWRITE: with leakguard active at startup this package is imported before
pytest can mark its plugin's distribution for assertion rewriting; the marker keeps pytest
from warning about it (a warning that `-W error` would turn into a failed run).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["LeakError", "census", "check", "disable", "enable", "is_enabled",
           "open_sessions"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._api import LeakError, census, check, disable, enable, is_enabled, open_sessions


def __getattr__(name: str) -> object:
    # Lazy: the startup hook imports this package in every interpreter (PEP 829 .start
    # files), so it must cost nothing until the API is actually used.
    if name in __all__:
        from . import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'leakguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
