"""requests.Session: closed once close() is called (also by `with`); streamed responses."""

from __future__ import annotations

import sys

from .._response_path import track_from
from ._base import Integration, tally
from ._responses import ResponseReader, track_response
from .urllib3 import ORIGINS, pool_counts, pool_origin, raw_holds

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

    # the record keeps the raw (urllib3's response) until the verdict: the Response dying
    # of its last reference is judged at once, before its raw goes with it; one in a
    # reference cycle at the collection's end, once its finalizers ran (an owner's __del__
    # may have closed it): the raw is still there to be read then, not closed under us by
    # io's finalizer, and it is dropped right after (see _verdicts). raw_holds itself: one
    # call per response's death, not two
    held_at_death = staticmethod(raw_holds)  # type: ignore[assignment]  # a function: no self


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
    streamed_by = "stream"
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
        try:  # raw_holds(), inline: plain attributes, read without getattr()'s calls
            raw = result.raw
            held = raw._connection is not None and not raw.closed
        except AttributeError:  # another urllib3 (urllib3-future), or no raw
            raw = getattr(result, "raw", None)
            held = raw is not None and raw_holds(raw)
        if not held:
            return
        pool = raw._pool
        # pool_origin(), inline when the origin is known: a dict lookup, no call
        where = ORIGINS.get((pool.scheme, pool.host, pool.port)) if pool is not None else ""
        if where is None:
            where = pool_origin(pool)
        if type(user) is _FRAME:  # type(): one specialized instruction, __class__ a lookup
            track_from(result, RESPONSES, self.response_name, where, raw, user)
        else:
            track_response(result, RESPONSES, self.response_name, where, raw, user)


_FRAME = type(sys._getframe())
