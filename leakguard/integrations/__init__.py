"""Client-library integrations: one module each, registered here by one line."""

from __future__ import annotations

from ._base import Integration


def all_integrations() -> dict[str, Integration]:
    """A fresh instance of every integration, by target name."""
    from .aiohttp import AiohttpIntegration
    from .httpx import HttpxIntegration
    from .httpx2 import Httpx2Integration
    from .niquests import NiquestsIntegration
    from .requests import RequestsIntegration
    from .urllib3 import Urllib3Integration

    found: list[Integration] = [
        RequestsIntegration(),
        AiohttpIntegration(),
        HttpxIntegration(),
        Urllib3Integration(),
        Httpx2Integration(),
        NiquestsIntegration(),
    ]
    return {i.name: i for i in found}


__all__ = ["Integration", "all_integrations"]
