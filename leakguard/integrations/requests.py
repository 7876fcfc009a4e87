"""requests.Session: closed once close() is called (also by `with`)."""

from __future__ import annotations

from ._base import Integration, tally
from .urllib3 import pool_counts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RequestsIntegration(Integration):
    """requests.Session and its subclasses."""

    name = "requests"
    module = "requests"
    minimum = (2, 26)
    classes: tuple[tuple[str, str], ...] = (("Session", "requests.Session"),)
    closers = ("close",)

    def resources(self, session: Any) -> object:
        # the adapters dict: mount() adds to it in place, and adapters never hold the session
        return session.adapters

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        managers = [m for adapter in list(resources.values())
                    for m in (getattr(adapter, "poolmanager", None),
                              *getattr(adapter, "proxy_manager", {}).values())
                    if m is not None]
        return tally(pair for m in managers for pair in pool_counts(m.pools))
