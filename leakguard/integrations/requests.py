"""requests.Session: closed once close() is called (also by `with`)."""

from __future__ import annotations

from ._base import Integration
from .urllib3 import count_pools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RequestsIntegration(Integration):
    """requests.Session and its subclasses."""

    name = "requests"
    module = "requests"
    minimum = (2, 26)
    classes = (("Session", "requests.Session"),)
    closers = ("close",)

    def resources(self, session: Any) -> object:
        # the adapters dict: mount() adds to it in place, and adapters never hold the session
        return session.adapters

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        total = 0
        origins: list[str] = []
        for adapter in list(resources.values()):
            managers = [getattr(adapter, "poolmanager", None),
                        *getattr(adapter, "proxy_manager", {}).values()]
            for manager in managers:
                if manager is None:
                    continue
                n, where = count_pools(manager.pools)
                total += n
                origins.extend(w for w in where if w not in origins)
        return total, origins
