"""requests.Session: closed once close() is called (also by `with`); streamed responses."""

from __future__ import annotations

from ._base import Integration, tally
from ._responses import ResponseReader, track_response
from .urllib3 import pool_counts, pool_origin, raw_holds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

    from ._responses import CalledAt


class RequestsResponses(ResponseReader):
    """requests.Response (stream=True): holds its connection through its urllib3 `raw`."""

    name = "requests"

    def holds(self, response: Any) -> bool:
        return raw_holds(response.raw)

    def held_at_death(self, resources: Any) -> bool | None:
        # the record keeps the raw (urllib3's response) until the verdict: the Response dying
        # of its last reference is judged at once, before its raw goes with it; one in a
        # reference cycle at the collection's end, once its finalizers ran (an owner's
        # __del__ may have closed it): the raw is still there to be read then, not closed
        # under us by io's finalizer, and it is dropped right after (see _verdicts)
        return raw_holds(resources)


RESPONSES = RequestsResponses()


class RequestsIntegration(Integration):
    """requests.Session and its subclasses."""

    name = "requests"
    module = "requests"
    minimum = (2, 26)
    classes: tuple[tuple[str, str], ...] = (("Session", "requests.Session"),)
    closers = ("close",)
    requesters = ("send",)
    reusable = True
    response_name = "requests.Response"

    def resources(self, session: Any) -> object:
        # the adapters dict: mount() adds to it in place, and adapters never hold the session
        return session.adapters

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        managers = [m for adapter in list(resources.values())
                    for m in (getattr(adapter, "poolmanager", None),
                              *getattr(adapter, "proxy_manager", {}).values())
                    if m is not None]
        return tally(pair for m in managers for pair in pool_counts(m.pools))

    def on_response(self, session: Any, result: Any, kwargs: Any,
                    user: FrameType | CalledAt | None = None) -> None:
        # a response that is not streamed was read whole, its connection released: skipped
        if not kwargs.get("stream"):
            return
        raw = getattr(result, "raw", None)
        if raw is None or not raw_holds(raw):
            return
        track_response(result, RESPONSES, self.response_name, pool_origin(raw._pool), raw,
                       user)
