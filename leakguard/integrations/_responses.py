"""Responses that hold a connection, and the request path of sessions: shared by integrations."""

from __future__ import annotations

import functools
import sys
from collections.abc import Coroutine

from .. import _stacks
from .._guard import internal_error
from .._response_path import track_from
from .._tracker import RESPONSE, TRACKER
from .._unseen import unseen_by_warnings
from .._usage import _MAX_WALK, innermost_user, note_request
from .._wrapt import is_coroutine_function

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType
    from typing import Any

    from .._record import Record

    # where an async request was called: the user's frame's code and offset (no frame held)
    CalledAt = tuple[CodeType, int]


class ResponseReader:
    """How the tracker reads one library's responses (the tracker's Reader for them).

    A response is judged by whether it still holds a connection: `holds()` while it lives;
    once it is gone, `held_at_death()` from what the record keeps (weak references only), or
    the snapshot an integration takes just before the library's own finalizer runs.
    """

    name = ""

    def resources(self, response: Any) -> object:
        """Unused for responses: the integration passes what the record keeps."""
        return None

    def holds(self, response: Any) -> bool:
        """Whether a live response still holds its connection (the library's own state)."""
        return False

    def is_closed(self, response: Any) -> bool:
        """A live response counts as closed once it holds no connection."""
        return not self.holds(response)

    def held_at_death(self, resources: Any) -> bool | None:
        """Whether it held a connection as it died; None when it cannot tell."""
        return None

    def revived(self, resources: Any) -> object:
        """Dead in a collection: an object that lives as long as the response, if a finalizer
        brought the response back (the tracker waits for it to go); None: truly dead."""
        return None

    def resources_closed(self, resources: Any) -> bool:
        """At a verdict with nothing known: not reported (no false alarm)."""
        held = self.held_at_death(resources)
        return not held

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        """Unused for responses: the record keeps its origin."""
        return None, []


@functools.lru_cache(maxsize=512)
def origin_of(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host:port` (default port filled in), one shared string per origin."""
    if port is None:
        port = 443 if scheme in ("https", "wss") else 80
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6, as _base.origin() writes it
    return f"{scheme}://{host}:{port}"


def track_response(response: object, reader: ResponseReader, type_name: str, where: str,
                   resources: object = None, user: FrameType | CalledAt | None = None
                   ) -> Record | None:
    """Track a response that holds a connection to `where` (an origin); its record.

    Its stack starts at the user's line that made the request, not in the library: `user`,
    that frame when the request path found it already (note_request), else looked for here;
    for an async request, (code, offset) of the frame that called the request (_Then).
    """
    if user is None:
        return track_from(response, reader, type_name, where, resources,
                          innermost_user(sys._getframe(1)))
    if isinstance(user, tuple):
        here = sys._getframe(1)
        found = innermost_user(here)
        # awaited by the coroutine that called it, the chain here is the caller's; driven by
        # a Task (asyncio.gather, create_task), it is the event loop's
        if found.f_code is user[0]:
            return track_from(response, reader, type_name, where, resources, found)
        depth = TRACKER.stack_depth
        if found is _awaiter(here) and depth > 0:
            # awaited straight by a user's coroutine that had the request made by a function
            # of its own (a subclass's get(), a helper that returns session.get(...)): its
            # stack, then the line that made the request, as a sync request's would read
            stack = _stacks._intern((*user, *_stacks.capture_from(found, depth - 1)))
            return track_from(response, reader, type_name, where, resources, None, stack)
        return track_from(response, reader, type_name, where, resources, None,
                          called_from(user, found, depth))
    return track_from(response, reader, type_name, where, resources, user)


def _awaiter(frame: FrameType | None) -> FrameType | None:
    """The first frame from `frame` outwards that is not leakguard's: what awaits it."""
    internal = _stacks._internal_dirs()
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame = frame.f_back
    return frame


def called_from(called_at: CalledAt, frame: FrameType | None, depth: int) -> _stacks.Stack:
    """The stack of an async request whose response arrived in a chain other than its
    caller's: the line that made the request, then its frame's callers if that frame is in
    the chain (awaited further out), else that line alone (its callers are not known)."""
    code, lasti = called_at
    if depth <= 0:
        return ()
    n = _MAX_WALK
    while frame is not None and n:
        if frame.f_code is code:
            return _stacks._intern((code, lasti, *_stacks.capture_from(frame.f_back, depth - 1)))
        frame = frame.f_back
        n -= 1
    return _stacks._intern((code, lasti))


def dying_record(response: object) -> Record | None:
    """The record of a response its library is finalizing; None: untracked (or an id reused)."""
    record = TRACKER._live.get(id(response))
    if record is None or record.kind is not RESPONSE:
        return None
    alive = record()
    if alive is not None and alive is not response:
        return None
    return record


def snapshot(response: object, reader: ResponseReader) -> None:
    """Just before the library's finalizer of a dropped response: did it hold a connection?"""
    record = dying_record(response)
    if record is not None:
        record.held = reader.holds(response)


def _then(coro: Any, then: Any, instance: Any, kwargs: Any, called_at: CalledAt | None,
          where: str) -> Any:
    """The library's coroutine, driven as is; its result looked at once it returns."""
    # the library's steps pass through in C (yield from); this runs in the frame chain of
    # the awaiting coroutine, whose stack reaches the user; driven by a Task (asyncio.gather)
    # the line that called is in called_at
    result = yield from coro.__await__()
    try:
        then(instance, result, kwargs, called_at)
    except Exception as exc:
        internal_error(where, exc)
    return result


# a library's warning from inside its coroutine, with a stacklevel, skips this frame
_then = unseen_by_warnings(_then)


class _Then(functools.partial, Coroutine):  # type: ignore[type-arg]
    """What a patched coroutine function returns: the library's coroutine and what to do with
    its result, as `functools.partial(_then, coro, ...)`; awaiting it runs `_then`.

    Not a coroutine of ours: one never awaited warns under the library's name only (the
    library's coroutine, never driven, does), and `__await__` is partial's own call, in C:
    ~3x cheaper per request than a Python `__next__` at each step.
    """

    __slots__ = ()
    __await__ = functools.partial.__call__

    def _steps(self) -> Any:
        steps = self.__dict__.get("steps")
        if steps is None:
            steps = self.__dict__["steps"] = self()
        return steps

    # driven step by step (a Task, asyncio.gather, aiohttp's context manager's send())
    def send(self, value: Any) -> Any:
        return self._steps().send(value)

    def throw(self, *args: Any) -> Any:
        if "steps" not in self.__dict__:
            return self.args[0].throw(*args)  # not started: as the library's coroutine does
        return self._steps().throw(*args)

    def close(self) -> None:
        if "steps" not in self.__dict__:
            self.args[0].close()  # never started: closed without a "never awaited" warning
        else:
            self._steps().close()

    def __repr__(self) -> str:
        return repr(self.args[0])

    def __getattr__(self, name: str) -> Any:
        # what asyncio's Task repr and get_stack(), inspect.getcoroutinestate() and debuggers
        # read of a coroutine: the library's coroutine's, which is the one running (looked
        # up only when asked: nothing per request)
        if name in _COROUTINE_ATTRIBUTES:
            return getattr(self.args[0], name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


_COROUTINE_ATTRIBUTES = frozenset((
    "__name__", "__qualname__", "cr_await", "cr_code", "cr_frame", "cr_origin", "cr_running",
    "cr_suspended"))


def _closed(session: Any, _result: Any, closed_at: Any, _called_at: Any) -> None:
    TRACKER.close(session, closed_at)


def closed_when_done(coro: Any, session: Any, closed_at: Any, where: str) -> Any:
    """The library's close coroutine, driven as is; the session closed once it has run."""
    return _Then(_then, coro, _closed, session, closed_at, None, where)


def request_wrapper(integration: Any, method: Any) -> Any:
    """The wrapper of a session method that makes one request: last use, use after close and,
    when the integration tracks responses, the response it returns."""
    where = f"a request of a {integration.name} session"
    reusable = integration.reusable
    closer = integration.closers[0] if integration.closers else "close"
    on_response = integration.on_response if integration.tracks_responses() else None
    gate = integration.streamed_by
    # every request passes here: try/except hands an error to the guard's handler
    # (internal_error) as `with guard` does, without its two calls per request

    if on_response is not None and is_coroutine_function(method):
        def async_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            called_at = None
            try:
                # the response's stack if a Task drives the request (asyncio.gather): where
                # the user's frame called it, not the frame (held, it could form a cycle
                # with an unawaited request)
                found = note_request(instance, reusable, closer)
                if found is not None:
                    called_at = (found.f_code, found.f_lasti)
            except Exception as exc:
                internal_error(where, exc)
            coro = wrapped(*args, **kwargs)
            if gate is not None and not kwargs.get(gate):
                return coro  # read whole: its response is not looked at
            return _Then(_then, coro, on_response, instance, kwargs, called_at, where)

        return async_request

    def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        user = None
        try:
            # the user's frame, found once: the last use, and the stack of the response
            user = note_request(instance, reusable, closer)
        except Exception as exc:
            internal_error(where, exc)
        result = wrapped(*args, **kwargs)
        if on_response is not None and (gate is None or kwargs.get(gate)):
            try:
                on_response(instance, result, kwargs, user)
            except Exception as exc:
                internal_error(where, exc)
        return result

    return unseen_by_warnings(request)
