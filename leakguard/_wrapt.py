"""wrapt's FunctionWrapper, without importing all of wrapt when that can be helped.

`import wrapt` (2.x) runs its package __init__, which imports asyncio, inspect and
importlib.metadata (~25 ms of an active `import requests`, a third of its start-up). Patching
needs one type, FunctionWrapper, from wrapt's C extension, whose only import is
wrapt.exceptions: when wrapt is not imported yet, those two modules are loaded on their own,
registered under their own names (a later `import wrapt` reuses them: one FunctionWrapper
type in the process). Anything unusual (no C extension, WRAPT_DISABLE_EXTENSIONS, another
layout) falls back to `import wrapt`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

_NAMES = ("wrapt.exceptions", "wrapt._wrappers")


def function_wrapper() -> Any:
    """wrapt.FunctionWrapper: the C extension's when it loads alone, else the package's."""
    if "wrapt" not in sys.modules and not os.environ.get("WRAPT_DISABLE_EXTENSIONS"):
        ext = sys.modules.get("wrapt._wrappers")
        if ext is None:
            try:
                ext = _load_alone()
            except Exception:
                ext = None
        found = getattr(ext, "FunctionWrapper", None)
        if found is not None:
            return found
    import wrapt

    return wrapt.FunctionWrapper


def is_coroutine_function(function: object) -> bool:
    """inspect.iscoroutinefunction() for a function in a class's dict, without importing
    inspect (~6 ms of an active start-up)."""
    code = getattr(function, "__code__", None)
    return bool(getattr(code, "co_flags", 0) & 0x80)  # CO_COROUTINE


def _load_alone() -> ModuleType | None:
    import importlib.machinery as machinery

    spec = machinery.PathFinder.find_spec("wrapt")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    if len(places) != 1:
        return None
    place = places[0]
    source = os.path.join(place, "exceptions.py")
    ext = next((os.path.join(place, "_wrappers" + suffix)
                for suffix in machinery.EXTENSION_SUFFIXES
                if os.path.isfile(os.path.join(place, "_wrappers" + suffix))), None)
    if ext is None or not os.path.isfile(source):
        return None
    made: list[str] = []
    try:
        exceptions = _load(machinery.SourceFileLoader(_NAMES[0], source), made)
        # the extension imports "wrapt.exceptions", which imports its parent first: a
        # stand-in parent for that moment, under the import lock (no other thread imports
        # wrapt meanwhile and sees it)
        import _imp

        _imp.acquire_lock()
        try:
            if "wrapt" in sys.modules:  # imported meanwhile: use it
                return None
            stand_in = type(sys)("wrapt")
            stand_in.__path__ = [place]
            # marked as being imported: another thread's `import wrapt` then waits for the
            # module lock (which needs the import lock we hold) instead of taking the
            # stand-in, and finds the real package once we are done
            stand_in.__spec__ = machinery.ModuleSpec("wrapt", None, is_package=True)
            stand_in.__spec__._initializing = True  # type: ignore[attr-defined]
            stand_in.exceptions = exceptions  # type: ignore[attr-defined]
            sys.modules["wrapt"] = stand_in
            try:
                module = _load(machinery.ExtensionFileLoader(_NAMES[1], ext), made)
            finally:
                if sys.modules.get("wrapt") is stand_in:
                    del sys.modules["wrapt"]
        finally:
            _imp.release_lock()
    except BaseException:
        for name in made:
            sys.modules.pop(name, None)
        raise
    from . import _hooks

    # the real package, if imported later, finds its submodules already loaded: the import
    # system then does not set them as its attributes, as it would have
    _hooks.when_imported("wrapt", _attach)
    return module


def _load(loader: Any, made: list[str]) -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_loader(loader.name, loader, origin=loader.path)
    assert spec is not None
    spec.has_location = True
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    made.append(loader.name)
    loader.exec_module(module)
    return module


def _attach(wrapt: ModuleType) -> None:
    for name in _NAMES:
        module = sys.modules.get(name)
        attr = name.rpartition(".")[2]
        if module is not None and not hasattr(wrapt, attr):
            setattr(wrapt, attr, module)
