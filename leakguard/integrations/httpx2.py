"""httpx2.Client, httpx2.AsyncClient, their streamed responses (the httpx 0.28 fork): as httpx."""

from __future__ import annotations

from .httpx import HttpxIntegration


class Httpx2Integration(HttpxIntegration):
    """httpx2.Client, httpx2.AsyncClient and their subclasses, also when reached as `httpx`."""

    name = "httpx2"
    module = "httpx2"
    minimum = (2, 0)
    below = (3,)
    classes = (("Client", "httpx2.Client"), ("AsyncClient", "httpx2.AsyncClient"))
    response_name = "httpx2.Response"
