"""Verdicts on a few records: garbage collection only when it can change one, youngest first."""

from __future__ import annotations

import gc
import sys
from collections import deque

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from ._tracker import Record, Tracker

# how far below `roots` (the test's module) and below every module a session is looked for,
# and how many references at most (a full collection of a big heap looks at millions):
# beyond, a collection decides. Module -> its dict -> a global -> in a container of it.
HOLDER_DEPTH = 4
MODULES_DEPTH = 3
HOLDER_BUDGET = 200_000
HOLDER_WIDTH = 1_000  # a bigger container (a module's table of records) is not looked into
_SIZED: tuple[type[Any], ...] = (list, dict, tuple, set, frozenset, deque)


def still_open(records: list[Record]) -> list[Record]:
    """The records whose session is alive and not closed by the library's own state."""
    found = []
    for record in records:
        if record.closed:
            continue
        session = record()
        if session is None:
            continue  # dead: judged by the tracker's drain (a gc leak or closed)
        closed = False
        with guard(f"reading the state of a {record.type_name}"):
            closed = record.integration.is_closed(session)
        del session
        if not closed:
            found.append(record)
    return found


def settle(tracker: Tracker, records: list[Record], full: bool = True,
           roots: Iterable[object] = ()) -> tuple[list[Record], bool]:
    """The records still open after the cheapest garbage collection that could free them,
    and whether it collected at all.

    Collecting is the only way to judge a session held by a reference cycle (closed or not
    by a finalizer); it runs only if some record is still open, young generations first.
    A full collection only if `full` and some record remains that no module (nor `roots`)
    holds: a session reachable from there is alive whatever a collection does.
    """
    tracker.drain()
    found = still_open(records)
    collected = False
    for generation in (0, 1):
        if not found:
            break
        gc.collect(generation)
        collected = True
        tracker.drain()
        found = still_open(found)
    if found and full and len(held(found, roots)) < len(found):
        gc.collect()
        tracker.drain()
        found = still_open(found)
    return found, collected


def full_collections() -> int:
    """How many full collections the interpreter ran so far (ours and its own)."""
    return int(gc.get_stats()[-1]["collections"])


def held(records: list[Record], roots: Iterable[object] = ()) -> set[int]:
    """The keys of the records whose session `roots` (the test's module, say) or any module's
    globals hold: a few references deep, a bounded number of references looked at."""
    pairs = [(r(), r.key) for r in records]
    sessions = [s for s, _ in pairs if s is not None]  # alive while looked for: ids hold
    targets = {id(s): key for s, key in pairs if s is not None}
    del pairs
    found: set[int] = set()
    with guard("looking for the holders of open sessions"):
        # the modules themselves: no attribute of theirs is read (a lazy module stays lazy)
        modules: list[object] = list(sys.modules.values())
        for frontier, depth in ((list(roots), HOLDER_DEPTH), (modules, MODULES_DEPTH)):
            _search(frontier, depth, targets, found)
            if len(found) == len(targets):
                break
    del sessions
    return found


def _search(frontier: list[object], depth: int, targets: dict[int, int],
            found: set[int]) -> None:
    # breadth first, each container once; C-level loops (a module of big lists stays cheap)
    seen = set(map(id, frontier))
    looked = 0
    for level in range(depth):
        if not frontier:
            return
        refs = gc.get_referents(*frontier)
        found.update(targets[i] for i in targets.keys() & set(map(id, refs)))
        looked += len(refs)
        if len(found) == len(targets) or looked > HOLDER_BUDGET or level == depth - 1:
            return
        containers = [o for o in filter(gc.is_tracked, refs) if _small(o)]
        del refs
        tracked = dict(zip(map(id, containers), containers))
        del containers
        for i in seen.intersection(tracked):
            del tracked[i]
        seen.update(tracked)
        frontier = list(tracked.values())


def _small(container: object) -> bool:
    # builtin sizes only, by type (a class's own __len__ or __class__ could do anything)
    kind = type(container)
    for base in _SIZED:
        if issubclass(kind, base):
            return bool(base.__len__(container) <= HOLDER_WIDTH)
    return True  # an instance, a function: its few references
