"""aiohttp.ClientSession: closed when its own `closed` property is true; its responses."""

from __future__ import annotations

import sys
from time import monotonic

from .._guard import internal_error
from .._tracker import TRACKER
from .._usage import _LIBRARY_FILES, _USER_FILES, _user_file, user_frame
from ._aiohttp_pool import closed_by_finalizer, finalizing, pool_of
from ._base import Integration
from ._responses import ResponseReader, _Then, _then, origin_of, track_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
    from typing import Any, Callable

    from .._record import Record
    from ._responses import CalledAt


class AiohttpResponses(ResponseReader):
    """aiohttp.ClientResponse: holds its connection until released, closed or read to EOF."""

    name = "aiohttp"

    def holds(self, response: Any) -> bool:
        # the response's own state, not the transport's: a response that was never released
        # is still one when its session closed the connection under it (and in a collection
        # the socket may be finalized first); aiohttp's protocol keeps such a response alive
        # until then, so it is collected only once its session is closed
        conn = response._connection
        if response._closed or conn is None:
            return False
        protocol = conn.protocol  # None once released; upgraded: a websocket owns it now
        return protocol is not None and not getattr(protocol, "upgraded", False)

    def held_at_death(self, resources: Any) -> bool | None:
        # judged as its connection was released (see _released): one never released (closed
        # after its loop, say) held nothing aiohttp would give back
        return False

    def resources_closed(self, resources: Any) -> bool:
        return True


RESPONSES = AiohttpResponses()

# ClientResponse.__del__'s code (set when patched): a release from it is a dropped response's
_FINALIZER: list[CodeType] = []


def _released(record: Record) -> Callable[[], None]:
    """A callback of the response's Connection, which aiohttp calls as it is released or
    closed: by the response's own release, close or EOF (it let go of it), or by its __del__
    (dropped while holding it: read as the old response's state, before aiohttp clears it).

    Nothing patched on the response, no cost for those never tracked; the record is reached
    from the connection only, which keeps neither the response nor its socket alive.
    """

    def released() -> None:
        try:
            held = False
            frame = sys._getframe(1)  # _notify_release, then Connection.release, then ...
            n = 4
            while frame is not None and n:
                if frame.f_code in _FINALIZER:
                    held = RESPONSES.holds(frame.f_locals["self"])
                    break
                frame = frame.f_back  # type: ignore[assignment]
                n -= 1
            record.held = held
        except Exception as exc:  # aiohttp would swallow it silently: the guard's rule
            internal_error("reading the state of an aiohttp response", exc)

    return released


class AiohttpIntegration(Integration):
    """aiohttp.ClientSession and its subclasses."""

    name = "aiohttp"
    module = "aiohttp"
    minimum = (3, 8)
    below = (4,)
    classes = (("ClientSession", "aiohttp.ClientSession"),)
    # close() is a coroutine function: calling it is not closing, awaiting it is, which
    # `closed` shows (read when judged; __del__ reads it as the session dies); detach()
    # closes the session but not the connector; a connector closed directly shows in
    # resources_closed()
    closers = ()
    checked_closers = ("detach", "__del__")
    async_closers = ("close",)
    # every request method wraps its request's coroutine in a class of aiohttp.client, a
    # module attribute: that is patched (module_patches), no method: no wrapper bound per
    # request (wrapt's binding of a method was a third of a request's bookkeeping)
    requesters = ()
    _response_class: type | None = None

    def owned_elsewhere(self) -> bool:
        # a session an httpx transport over aiohttp makes for itself (httpx_aiohttp, which
        # the OpenAI and Anthropic SDKs vendor as their DefaultAioHttpClient) is part of that
        # httpx client, tracked as such (its connections counted through the transport):
        # closed by the client's aclose(), one leak is one report
        frame = sys._getframe(1)
        while frame is not None:
            name = str(frame.f_globals.get("__name__", ""))
            if name.partition(".")[0] not in _THROUGH:
                return "httpx_aiohttp" in name
            frame = frame.f_back  # type: ignore[assignment]
        return False

    def resources(self, session: Any) -> object:
        # the connector weakly (held, it would keep alive the responses that hold one of
        # its connections, and their session), with its state as its finalizer began
        connector = session.connector
        return None if connector is None else pool_of(connector)

    def is_closed(self, session: Any) -> bool:
        if not session.closed:
            return False
        # a connector closed by its own finalizer (garbage with its session, finalized
        # first in the collection) was not closed by the program
        connector = session.connector
        return connector is None or not closed_by_finalizer(connector)

    def resources_closed(self, resources: Any) -> bool:
        state = None if resources is None else resources.now()
        # unknown (gone without its finalizer seen): closed, never a leak on a guess
        return state is None or state[0]

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        state = None if resources is None else resources.now()
        if state is None:
            return (0, []) if resources is None else (None, [])
        return state[1], state[2]

    def on_response(self, session: Any, result: Any, kwargs: Any,
                    user: CalledAt | None = None) -> None:
        # most responses arrive whole and aiohttp has released their connection already:
        # only one still holding it is tracked, from the user's line that awaited it (the
        # common case first, inline: every request passes here)
        if result._connection is None or result._closed:
            return
        if RESPONSES.holds(result):
            cls = type(result)
            name = "aiohttp.ClientResponse" if cls is self._response_class else \
                f"{cls.__module__}.{cls.__qualname__}"
            url = result.url
            record = track_response(result, RESPONSES, name,
                                    origin_of(str(url.scheme), str(url.host), url.port),
                                    None, user)
            if record is not None:
                result._connection.add_callback(_released(record))

    def response_patches(self, mod: ModuleType) -> list[tuple[type, str, Any]]:
        # nothing patched on responses (a wrapped __del__ cost every response a wrapt call):
        # a tracked one is judged through its connection's release callbacks
        self._response_class = mod.ClientResponse
        code = getattr(vars(mod.ClientResponse).get("__del__"), "__code__", None)
        _FINALIZER[:] = [code] if code is not None else []
        return []

    def module_patches(self, mod: ModuleType) -> list[tuple[object, str, object, Any]]:
        client = getattr(mod, "client", None)
        patches: list[tuple[object, str, object, Any]] = []
        # the connector's finalizer: its state read before it closes itself (_aiohttp_pool)
        base = getattr(getattr(mod, "connector", None), "BaseConnector", None)
        finalizer = vars(base).get("__del__") if isinstance(base, type) else None
        if callable(finalizer):
            patches.append((base, "__del__", finalizer, finalizing))
        for name, session_at in (("_RequestContextManager", None),
                                 ("_SessionRequestContextManager", 1)):  # aiohttp.request()
            found = vars(client).get(name) if client is not None else None
            if found is None or not callable(found):
                continue
            # aiohttp 3.9+: a generic alias, which calls the class and then sets
            # __orig_class__ on the instance, which fails silently (__slots__): the class
            # itself is wrapped (a third of the alias's cost; wrapt looks up __self__ on
            # what it wraps, which the alias answers slowly, by raising)
            origin_class = getattr(found, "__origin__", None)
            target = origin_class if isinstance(origin_class, type) and \
                origin_class.__dictoffset__ == 0 else found
            patches.append((client, name, target, _context_wrapper(self, session_at)))
        return patches


# the frames a session is built through before its maker's
_THROUGH = frozenset(("leakguard", "wrapt", "aiohttp"))
_WHERE = "a request of an aiohttp session"
_LIVE = TRACKER._live
_getframe = sys._getframe


def _context_wrapper(integration: AiohttpIntegration, session_at: int | None) -> Any:
    """The wrapper of the class every request method makes around its request's coroutine
    (`_RequestContextManager(self._request(...))`): the session's last use, and the request
    driven as it is, then its response looked at (_responses._then)."""
    on_response = integration.on_response if integration.tracks_responses() else None

    def context(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        then = None
        try:
            # the user's line: above get() (or aiohttp.request()) and outwards; for the last
            # use, and the response's stack if a Task drives the request (asyncio.gather):
            # where, not the frame (held, it could form a cycle with an unawaited request)
            caller = _getframe(1)
            found = caller.f_back
            if found is None:
                code = None
                into = False
            else:
                # what is known of the line that called: the last line's, most often this
                # one (a loop), read without a lookup: every object touched here costs a
                # request more than its instructions (a cache miss each), and the key of
                # the lookup is two new ints (0.5 % of an aiohttp request, measured)
                code, lasti = found.f_code, found.f_lasti
                site = _LAST[0]
                if site[0] is not code or site[1] != lasti:
                    site = _site(code, lasti)
                into = site[2]
                if not site[3]:  # a library's line (a wrapper of aiohttp): the user's, above
                    found = user_frame(found)
                    if found is None:
                        code = None
                    else:
                        code, lasti = found.f_code, found.f_lasti
            # the session: `self` of get(), request(), ... (a response read whole lets go of
            # it); aiohttp.request() passes its own
            session = caller.f_locals.get("self") if session_at is None else \
                args[session_at]
            record = _LIVE.get(id(session))
            if record is not None and record() is session:
                if code is not None:
                    record.last_code = code
                    record.last_lasti = lasti
                record.last_time = monotonic()
                record.uses += 1
            # `async with session.get(...)` gives the response back at the block's end
            # (aiohttp's __aexit__ releases it): it cannot leak, nothing to look at
            if not into and on_response is not None:
                then = _Then(_then, args[0], on_response, session, None,
                             None if code is None else (code, lasti), _WHERE)
        except Exception as exc:
            internal_error(_WHERE, exc)
        if then is None:
            return wrapped(*args, **kwargs)
        if len(args) == 1 and not kwargs:
            return wrapped(then)  # _RequestContextManager(coro): no tuple built
        return wrapped(then, *args[1:], **kwargs)

    return context


# id(code) ^ offset of a line that called a request method -> (code, offset, whether the
# call's result goes straight into `async with`, whether the line is the user's); holds the
# code: the id stays its own
_SITES: dict[int, tuple[CodeType, int, bool, bool]] = {}
_SITES_MAX = 4096


def _site(code: CodeType, lasti: int) -> tuple[CodeType, int, bool, bool]:
    """What is known of the call at `lasti` in `code`, made the last line's."""
    site = _SITES.get(id(code) ^ lasti)
    if site is None or site[0] is not code or site[1] != lasti:
        site = _remember_site(code, lasti)
    _LAST[0] = site
    return site


# the last of them (one tuple swapped whole: threads read a consistent one); at first, an
# offset no call has
_LAST: list[tuple[CodeType, int, bool, bool]] = [(_site.__code__, -1, False, False)]


def _remember_site(code: CodeType, lasti: int) -> tuple[CodeType, int, bool, bool]:
    """Whether the call at `lasti` in `code` is the user's and hands its result to
    `async with`, remembered."""
    filename = code.co_filename
    user = filename in _USER_FILES or (filename not in _LIBRARY_FILES and _user_file(filename))
    into = False
    if user:
        try:
            import dis

            # the offset is the call's, or (3.11, 3.12) that of its last inline cache entry:
            # the next instruction after it, if the one before is the call (3.9 to 3.13)
            last = ""
            for instruction in dis.get_instructions(code):  # once per line that requests
                if instruction.offset > lasti:
                    into = last.startswith("CALL") and \
                        instruction.opname == "BEFORE_ASYNC_WITH"
                    break
                last = instruction.opname
        except Exception:  # not read: looked at, as any other request
            into = False
    if len(_SITES) >= _SITES_MAX:
        _SITES.clear()
    known = _SITES[id(code) ^ lasti] = (code, lasti, into, user)
    return known
