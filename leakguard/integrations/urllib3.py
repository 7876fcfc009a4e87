"""urllib3.PoolManager and ProxyManager: closed once clear() is called (also by `with`);
responses made with preload_content=False."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable

from .._guard import guard
from .._tracker import TRACKER
from ._base import Integration, origin, tally
from ._responses import ResponseReader, dying_record, origin_of, snapshot, track_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


# The frames a pool manager is built or used through before its owner's, by top-level module
_THROUGH = frozenset(("leakguard", "wrapt", "urllib3"))
# file name -> the top-level module of its frames, read once from their globals: a dict
# lookup per frame where the module's name cost three calls (every streamed request, three
# times per requests.Session); names like "<string>" are shared by code of any module: read
# each time. Bounded: cleared when full.
_TOPS: dict[str, str] = {}
_TOPS_MAX = 20000


def _top_of(frame: Any) -> str:
    """The top-level package of the module a frame runs in (remembered by its file)."""
    top = str(frame.f_globals.get("__name__", "")).partition(".")[0]
    filename = frame.f_code.co_filename
    if not filename.startswith("<"):
        if len(_TOPS) >= _TOPS_MAX:
            _TOPS.clear()
        _TOPS[filename] = top
    return top


def _members(container: Any) -> list[Any] | None:
    # urllib3-future (niquests' urllib3, also installed over `urllib3`) keeps pools and
    # connections in a TrafficPolice whose registry holds every member, idle or busy
    registry = getattr(container, "_registry", None)
    if isinstance(registry, dict):
        return list(registry.values())
    queue = getattr(container, "queue", None)  # urllib3: a LifoQueue of idle connections
    return None if queue is None else list(queue)


def pool_counts(pools: Any) -> Iterator[tuple[str, int]]:
    """(origin, open connections) for each pool of a PoolManager's pools container."""
    found = _members(pools)
    if found is None:
        # the LRU's own dict: reading through the container would reorder the host's LRU
        found = [pools._container.get(key) if hasattr(pools, "_container") else pools.get(key)
                 for key in list(pools.keys())]
    for pool in found:
        connections = _members(getattr(pool, "pool", None))
        if pool is None or connections is None:
            continue
        yield origin(pool.scheme, pool.host, pool.port), sum(
            1 for conn in connections
            if conn is not None and getattr(conn, "sock", None) is not None)


def pool_origin(pool: Any) -> str:
    """The origin of a connection pool ('' when it is not one)."""
    if pool is None:
        return ""
    key = (pool.scheme, pool.host, pool.port)
    found = ORIGINS.get(key)
    if found is None:
        found = origin_of(str(pool.scheme), str(pool.host), pool.port)
        if len(ORIGINS) >= 512:
            ORIGINS.clear()
        ORIGINS[key] = found
    return found


# (scheme, host, port) of a pool -> its origin, read on the hot path without pool_origin()'s
# call (requests' streamed responses); bounded by the origins requested
ORIGINS: dict[tuple[Any, Any, Any], str] = {}


def raw_holds(raw: Any) -> bool:
    """Whether a urllib3 response still holds its connection: not released, body not closed."""
    return getattr(raw, "_connection", None) is not None and not raw.closed


class Urllib3Responses(ResponseReader):
    """urllib3.HTTPResponse (preload_content=False)."""

    name = "urllib3"

    def holds(self, response: Any) -> bool:
        return raw_holds(response)

    def resources_closed(self, resources: Any) -> bool:
        # judged by the snapshot taken when io's finalizer closes it (see _finalizing below);
        # none means its body was already closed then. Closed so in a collection, it held
        # its connection then; a later finalizer of the cycle may still have given it back
        if isinstance(resources, tuple):
            return put_back(*resources)
        return True


RESPONSES = Urllib3Responses()


def put_back(connection: Any, pool: Any) -> bool:
    """Whether a connection is back among its pool's idle ones (True: cannot tell)."""
    idle = getattr(getattr(pool, "pool", None), "queue", None)  # urllib3's LifoQueue
    if not isinstance(idle, Iterable):
        return True  # urllib3-future's pools do not say which are idle: no false alarm
    return any(c is connection for c in list(idle))


def finalized_in_gc(response: Any) -> None:
    """io's finalizer closes a response of cyclic garbage: what to judge it by at the end."""
    record = dying_record(response)
    if record is None:
        return
    if not raw_holds(response):
        record.held = False
        return
    # it holds its connection now; judged when the collection ends (Verdicts), once the
    # cycle's other finalizers ran: an owner's __del__ may still release it to the pool
    record.resources = (response.__dict__.get("_connection"), response.__dict__.get("_pool"))


def _in_del(response: Any) -> bool:
    """Whether close() is called by the response's own __del__ (urllib3-future has one)."""
    try:
        caller = sys._getframe(2)  # _in_del <- our close wrapper <- its caller
    except ValueError:  # called from C with no Python caller (atexit.register(r.close))
        return False
    return caller.f_code.co_name == "__del__" and caller.f_locals.get("self") is response


class Urllib3Integration(Integration):
    """urllib3.PoolManager, urllib3.ProxyManager and their subclasses."""

    name = "urllib3"
    module = "urllib3"
    minimum = (1, 26)
    below = (3,)
    classes = (("PoolManager", "urllib3.PoolManager"), ("ProxyManager", "urllib3.ProxyManager"))
    closers = ("clear",)
    requesters = ("urlopen",)
    reusable = True
    # libraries whose sessions own the PoolManagers they create (requests' and niquests'
    # HTTPAdapter): such a PoolManager is part of that session, never reported on its own
    owners = ("requests", "niquests")
    _closes_watched = False  # HTTPResponse.close wrapped (see _watch_closes)

    def resources(self, session: Any) -> object:
        return session.pools

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        return tally(pool_counts(resources))

    def owned_elsewhere(self) -> bool:
        frame = sys._getframe(1)
        tops = _TOPS
        while frame is not None:
            top = tops.get(frame.f_code.co_filename)
            if top is None:
                top = _top_of(frame)
            if top not in _THROUGH:
                return top in self.owners
            frame = frame.f_back  # type: ignore[assignment]
        return False

    def on_response(self, session: Any, result: Any, kwargs: Any, user: Any = None) -> None:
        # a response still holding its connection (preload_content=False), unless a library
        # that owns the manager tracks it as its own (read whole, it was released already)
        if getattr(result, "_connection", None) is None or self.owned_elsewhere() or \
                not raw_holds(result):
            return
        self._watch_closes()  # before it is tracked: every close of it is seen
        # its body (http.client's response) kept until the verdict: in a reference cycle,
        # that one's finalizer would close it before the response's own, which then neither
        # closes nor tells (see _close)
        track_response(result, RESPONSES, "urllib3.HTTPResponse",
                       pool_origin(getattr(result, "_pool", None)),
                       result.__dict__.get("_fp"), user)

    # Responses are looked at in PoolManager.urlopen (a requester: its wrapper is there for
    # the last use anyway), not in the pools' urlopen, which requests calls for each of its
    # requests: a wrapt call there was a third of a requests request's bookkeeping. A pool
    # used directly, without a manager, is not watched (README, Known limits).

    def _watch_closes(self) -> None:
        """Wrap HTTPResponse.close once the first response is tracked, never before: requests'
        responses (tracked as requests') never need it, and every close would pay a wrapt call."""
        if self._closes_watched or not self._patched:
            return
        with _PATCHING:
            if self._closes_watched or not self._patched:
                return
            from urllib3 import response

            self.wrap_attribute(response.HTTPResponse, "close", _close)  # unpatch() undoes
            self._closes_watched = True

    def unpatch(self) -> None:
        """Put every original back (HTTPResponse.close too, if it was wrapped)."""
        with _PATCHING:
            super().unpatch()
            self._closes_watched = False


_PATCHING = threading.Lock()
_CLOSING = guard("closing a urllib3 response")


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """HTTPResponse.close: a tracked response closed by the program is forgotten; closed by
    io's finalizer (dropped), whether it still held its connection is read first."""
    live = TRACKER._live
    tracked = bool(live) and id(instance) in live
    if tracked:
        with _CLOSING:
            # io's finalizer closes a dropped response (and says so in _finalizing):
            # whether it still held its connection is read now, before that close
            if instance.__dict__.get("_finalizing") or _in_del(instance):
                if TRACKER._in_gc:
                    finalized_in_gc(instance)
                else:
                    snapshot(instance, RESPONSES)
                tracked = False
    result = wrapped(*args, **kwargs)
    if tracked:
        with _CLOSING:
            TRACKER.close(instance)  # closed by the program: forgotten now
    return result
