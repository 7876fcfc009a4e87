"""Post-import hooks on top-level module names, stdlib only, so wrapt loads only when needed."""

from __future__ import annotations

import sys
import threading

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Callable

    Hook = Callable[[ModuleType], None]


class _Finder:
    """A meta-path finder that lets the real finders work, then runs hooks after exec."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Hook]] = {}
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.hooks:
            return None
        busy: set[str] = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = _find_with_others(self, fullname, path, target)
        finally:
            busy.discard(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        _chain_exec(loader, fullname, self)
        return spec

    def fire(self, module: ModuleType) -> None:
        """Run and forget the hooks of a module that has just been imported."""
        for hook in self.hooks.pop(module.__name__, []):
            with guard(f"patching {module.__name__} after its import"):
                hook(module)


def _find_with_others(me: object, fullname: str, path: Any, target: Any) -> ModuleSpec | None:
    for finder in list(sys.meta_path):
        if finder is me:
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _chain_exec(loader: Any, fullname: str, finder: _Finder) -> None:
    # Shadow exec_module on this loader instance only, and remove the shadow after one use:
    # the spec, the loader's type and module.__loader__ stay what the import system made.
    original = loader.exec_module

    def exec_module(module: ModuleType) -> None:
        try:
            del loader.exec_module
        except AttributeError:
            pass
        original(module)  # outside any try: the import's own errors are the import's
        if getattr(module, "__name__", None) == fullname:
            finder.fire(module)

    try:
        loader.exec_module = exec_module
    except (AttributeError, TypeError):
        pass  # a loader that refuses attributes: no hook for it, the import still works


_FINDER = _Finder()


def when_imported(name: str, hook: Hook) -> None:
    """Run hook(module) when the top-level module `name` is imported, or now if it is."""
    if "." in name:
        raise ValueError("post-import hooks are registered on top-level module names only")
    module = sys.modules.get(name)
    if module is not None:
        with guard(f"patching {name}"):
            hook(module)
        return
    _FINDER.hooks.setdefault(name, []).append(hook)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def forget_hooks() -> None:
    """Drop every pending hook and take the finder off sys.meta_path."""
    _FINDER.hooks.clear()
    try:
        sys.meta_path.remove(_FINDER)
    except ValueError:
        pass
