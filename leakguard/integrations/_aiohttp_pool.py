"""What an aiohttp session's record holds of its connector: a weak reference and a snapshot.

Held strongly, a connector keeps alive what reaches it: the responses that still hold one
of its connections, and through them their session (the record would change the lifetime
of the very object it watches). Held weakly, it may be gone when the verdict comes: in a
collection a weak reference to garbage is cleared before any finalizer runs, and the
verdict waits for the collection's end. So the connector's state is read once more as its
finalizer (BaseConnector.__del__, wrapped) begins, while it is whole: read when it is gone.
"""

from __future__ import annotations

import weakref

from .._guard import internal_error
from .._tracker import TRACKER
from ._base import origin, tally

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # closed, open pooled connections (None: the version does not say), their origins
    State = tuple[bool, int | None, list[str]]


def read(connector: Any) -> State:
    """The connector's closed state and its open pooled connections, now."""
    if connector.closed:
        return True, 0, []
    counts = origin_counts(connector)
    if counts is None:
        return False, None, []
    count, origins = tally(counts)
    return False, count, origins


def origin_counts(connector: Any) -> list[tuple[str, int]] | None:
    """(origin, open pooled connections) for each key of a connector's pool; None: unknown."""
    if connector.closed:
        return []
    conns = getattr(connector, "_conns", None)
    if conns is None:
        return None
    return [(origin("https" if key.is_ssl else "http", key.host, key.port),
             sum(1 for proto, *_ in list(entries)
                 if getattr(proto, "transport", None) is not None))
            for key, entries in list(conns.items())]


class _Ref(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a connector that knows its key in _POOLS (for its callback)."""

    __slots__ = ("key",)
    key: int


class Pool:
    """A session's view of its connector: it keeps the connector alive in no way."""

    __slots__ = ("ref", "state")

    def __init__(self, connector: Any) -> None:
        self.ref = _weak(connector)
        # the connector's state as its finalizer began (None: not yet, or not seen)
        self.state: State | None = None

    def now(self) -> State | None:
        """The connector's state: read now while it lives, else as it was when it went."""
        connector = self.ref()
        return self.state if connector is None else read(connector)


# id(connector) -> its Pool, shared by the sessions that use it; an entry leaves once the
# connector is gone (see _forget)
_POOLS: dict[int, Pool] = {}


def _weak(connector: Any) -> _Ref:
    ref = _Ref(connector, _forget)
    ref.key = id(connector)
    return ref


def pool_of(connector: Any) -> Pool:
    """The Pool of a connector, made on its first session."""
    key = id(connector)
    pool = _POOLS.get(key)
    if pool is None or pool.ref() is not connector:  # none, or an earlier connector's
        pool = _POOLS[key] = Pool(connector)
    return pool


def _forget(ref: _Ref) -> None:
    # A connector's weak reference died. Outside a collection its finalizer ran just before
    # (state read); in one the weak references to garbage are cleared before finalizers run:
    # the entry stays for the finalizer, which makes a new reference (this call again, later)
    pool = _POOLS.get(ref.key)
    if pool is not None and pool.ref is ref and (pool.state is not None
                                                 or not TRACKER._in_gc):
        del _POOLS[ref.key]


def finalizing(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """BaseConnector.__del__'s wrapper: the connector's state read before aiohttp closes it."""
    try:
        pool = _POOLS.get(id(instance))
        if pool is not None:
            alive = pool.ref()
            if alive is None:
                # in a collection: cleared already; a new one sees it if a finalizer revives
                # it (an SDK's __del__ scheduling its close), else dies with it
                pool.ref = _weak(instance)
                alive = instance
            if alive is instance:
                pool.state = read(instance)
    except Exception as exc:
        internal_error("reading the state of an aiohttp connector", exc)
    return wrapped(*args, **kwargs)


def closed_by_finalizer(connector: Any) -> bool:
    """Whether the connector was open when its own finalizer began (which closes it)."""
    pool = _POOLS.get(id(connector))
    state = None if pool is None else pool.state
    return state is not None and not state[0] and pool is not None and \
        pool.ref() is connector
