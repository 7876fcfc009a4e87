"""One shape for every client-library integration: what to patch, and how to read its state."""

from __future__ import annotations

import os

from .. import _stacks
from .._guard import internal_error
from .._tracker import TRACKER, capture_stack
from .._unseen import unseen_by_warnings
from .._usage import closed_here
from .._wrapt import is_coroutine_function

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType
    from typing import Any


def origin(scheme: object, host: object, port: object) -> str:
    """`scheme://host:port`, the only part of a URL a report ever shows."""
    h = str(host)
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"
    return f"{scheme}://{h}:{port}"


def tally(counts: Iterable[tuple[str, int]]) -> tuple[int, list[str]]:
    """Sum (origin, open connections) pairs: the total and the origins that have any, in order."""
    total = 0
    origins: list[str] = []
    for where, n in counts:
        if n:
            total += n
            if where not in origins:
                origins.append(where)
    return total, origins


def parse_version(text: str) -> tuple[int, ...]:
    """The leading numeric components of a version string: '2.31.0rc1' -> (2, 31, 0)."""
    parts = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


class Integration:
    """A client library: its module, classes, supported versions, close paths and pool reader."""

    name = ""
    module = ""  # top-level module: the post-import hook is registered on it
    minimum: tuple[int, ...] = ()
    below: tuple[int, ...] | None = None  # first version not supported
    classes: tuple[tuple[str, str], ...] = ()  # (attribute path in module, public name)
    closers: tuple[str, ...] = ("close",)  # the session counts as closed once one is called
    checked_closers: tuple[str, ...] = ()  # closed if is_closed() says so after the call
    # coroutine functions: calling one only makes a coroutine, which may never be awaited;
    # the library's own state says later whether it ran (see Tracker._judged_closed)
    async_closers: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()  # session methods that make one request (last use)
    reusable = False  # a request after close reopens the session: reported (used after close)
    # the keyword argument of a requester that asks for a streamed response: one asked for
    # without it was read whole, and is not looked at (no call, no generator per request)
    streamed_by: str | None = None
    responses = True  # enable(responses=...): also track the responses that hold a connection

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str, object]] = []
        self._public: dict[type, str] = {}
        self.library_dir = ""

    # -- per-library reading of state (overridden) -----------------------------------------

    def resources(self, session: Any) -> object:
        """What the record holds strongly to count connections later; never the session."""
        return None

    def is_closed(self, session: Any) -> bool:
        """The library's own closed state of a live session."""
        return False

    def resources_closed(self, resources: Any) -> bool:
        """Whether the pools show the session closed, once the session itself is gone."""
        return False

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        """Open pooled connections and their origins; None when the version does not say."""
        return None, []

    def held_at_death(self, resources: Any) -> bool | None:
        """A response's: whether it held a connection as it died; None when it cannot tell."""
        return None

    def revived(self, resources: Any) -> object:
        """Only responses are revived (see ResponseReader.revived)."""
        return None

    def foreign(self, mod: ModuleType) -> bool:
        """Whether the module imported under this name is another library's (left to it)."""
        return False

    # -- versions ------------------------------------------------------------------------

    def version(self, mod: ModuleType) -> str:
        """The installed library's version string."""
        return str(getattr(mod, "__version__", "0"))

    def supported(self, mod: ModuleType) -> bool:
        """Whether the imported library's version is inside the supported range."""
        return self.supports(self.version(mod))

    def supports(self, version: str) -> bool:
        """Whether a version string is inside the supported range."""
        v = parse_version(version)
        return v >= self.minimum and (self.below is None or v < self.below)

    def supported_range(self) -> str:
        """The supported range as a requirement string."""
        low = ".".join(map(str, self.minimum))
        high = f",<{'.'.join(map(str, self.below))}" if self.below else ""
        return f">={low}{high}"

    # -- patching ------------------------------------------------------------------------

    @property
    def patched(self) -> bool:
        """Whether this integration's patches are in place."""
        return bool(self._patched)

    def patch(self, mod: ModuleType) -> None:
        """Wrap constructors and close paths of every class; patching twice is a no-op."""
        if self._patched:
            return
        from .._wrapt import function_wrapper

        wrapper_type = function_wrapper()  # wrapt's; what wrap_function_wrapper() makes

        self.library_dir = os.path.dirname(os.path.abspath(mod.__file__ or "")) + os.sep
        _stacks.add_library_dir(self.library_dir)
        from ._responses import request_wrapper

        init = self._init_wrapper()
        on_call = self._close_wrapper(checked=False)
        checked = self._close_wrapper(checked=True)
        called = self._async_close_wrapper()
        for path, public in self.classes:
            cls: Any = mod
            for part in path.split("."):
                cls = getattr(cls, part)
            # a listed subclass of a listed class reaches the base's wrapped __init__
            # through super(): wrapping its own would track one session twice
            subclass = any(issubclass(cls, done) for done in self._public)
            self._public[cls] = public
            for method, wrapper in (("__init__", init),
                                    *((m, on_call) for m in self.closers),
                                    *((m, checked) for m in self.checked_closers),
                                    *((m, called) for m in self.async_closers),
                                    *((m, None) for m in self.requesters)):
                if method not in vars(cls) or (subclass and method in ("__init__",
                                                                       *self.requesters)):
                    continue  # inherited from a patched base class: patched there
                original = vars(cls)[method]
                if wrapper is None:
                    wrapper = unseen_by_warnings(request_wrapper(self, original))
                elif wrapper is on_call and is_coroutine_function(original):
                    wrapper = called  # an async close: calling it is not closing
                # as wrapt.wrap_function_wrapper(cls, method, wrapper) does, for an attribute
                # of the class itself
                setattr(cls, method, wrapper_type(original, wrapper))
                self._patched.append((cls, method, original))
        for cls, method, wrapper in self.response_patches(mod) if self.responses else ():
            self.wrap_attribute(cls, method, wrapper)
        for owner, name, target, wrapper in self.module_patches(mod):
            # a module's attribute: `target` wrapped in its place (the original put back)
            self.wrap_attribute(owner, name, wrapper, target)

    def wrap_attribute(self, owner: Any, name: str, wrapper: Any, target: object = None,
                       ) -> None:
        """A wrapt wrapper of `target` (the attribute itself by default) in place of
        owner.name, remembered: unpatch() puts the original back."""
        from .._wrapt import function_wrapper

        original = vars(owner)[name]
        setattr(owner, name, function_wrapper()(original if target is None else target,
                                                unseen_by_warnings(wrapper)))
        self._patched.append((owner, name, original))

    def unpatch(self) -> None:
        """Put every original method back, in reverse order; unpatching twice is a no-op."""
        while self._patched:
            cls, method, original = self._patched.pop()
            setattr(cls, method, original)
        self._public.clear()

    def type_name(self, cls: type) -> str:
        """The name reports use: the public name for a patched class, module.qualname else."""
        public = self._public.get(cls)
        if public is not None:
            return public
        return f"{cls.__module__}.{cls.__qualname__}"

    # -- the wrappers: the original is called outside any try ------------------------------

    # The wrappers run for every session made and closed: try/except hands an error to the
    # guard's handler (internal_error), as `with guard(...)` does, without its two calls.

    def _init_wrapper(self) -> Any:
        where = f"tracking a new {self.name} session"

        def init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            result = wrapped(*args, **kwargs)
            try:
                if not self.owned_elsewhere():
                    TRACKER.track(instance, self, self.type_name(type(instance)),
                                  capture_stack(instance=instance))
            except Exception as exc:
                internal_error(where, exc)
            return result

        return unseen_by_warnings(init)

    def _close_wrapper(self, checked: bool) -> Any:
        where = f"closing a {self.name} session"
        reusable = self.reusable

        def close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            result = wrapped(*args, **kwargs)
            try:
                # untracked (owned by another session, or made before leakguard): nothing
                # to read, and no frame walk for where it was closed
                if id(instance) in TRACKER._live and (not checked or self.is_closed(instance)):
                    TRACKER.close(instance, closed_here() if reusable else None)
            except Exception as exc:
                internal_error(where, exc)
            return result

        return unseen_by_warnings(close)

    def _async_close_wrapper(self) -> Any:
        where = f"closing a {self.name} session"
        reusable = self.reusable

        def close_called(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            result = wrapped(*args, **kwargs)
            try:
                TRACKER.close_called(instance, result)
                if reusable and id(instance) in TRACKER._live:
                    # a session that can be used after close (niquests.AsyncSession): closed
                    # once its close coroutine has run, as a sync close() is at once
                    from ._responses import closed_when_done

                    return closed_when_done(result, instance, closed_here(), where)
            except Exception as exc:
                internal_error(where, exc)
            return result

        return unseen_by_warnings(close_called)

    # -- the request path and responses (see _responses.py) -------------------------------

    def on_response(self, session: Any, result: Any, kwargs: Any, user: Any = None) -> None:
        """A requester returned `result`: track it if it is a response holding a connection.

        `user`: the user's frame (a plain requester), or where an async one was called."""

    def tracks_responses(self) -> bool:
        """Whether the requesters' results are looked at (on_response is overridden)."""
        return self.responses and type(self).on_response is not Integration.on_response

    def response_patches(self, mod: ModuleType) -> list[tuple[type, str, Any]]:
        """(class, method, wrapper) for response classes, patched when responses are on."""
        return []

    def module_patches(self, mod: ModuleType) -> list[tuple[object, str, object, Any]]:
        """(module, attribute, what to wrap in its place, wrapper): module-level patches."""
        return []

    def owned_elsewhere(self) -> bool:
        """Whether the session being built belongs to another tracked session (not reported)."""
        return False
