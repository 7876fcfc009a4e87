"""Client-library integrations: one module each, registered here by one line."""

from __future__ import annotations

from ._base import Integration


def all_integrations() -> dict[str, Integration]:
    """A fresh instance of every integration, by target name."""
    from .aiohttp import AiohttpIntegration
    from .requests import RequestsIntegration

    found: list[Integration] = [RequestsIntegration(), AiohttpIntegration()]
    return {i.name: i for i in found}


__all__ = ["Integration", "all_integrations"]
