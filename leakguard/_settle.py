"""Verdicts on a few records: garbage collection only when it can change one, youngest first."""

from __future__ import annotations

import gc

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._tracker import Record, Tracker


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


def settle(tracker: Tracker, records: list[Record]) -> tuple[list[Record], bool]:
    """The records still open after the cheapest garbage collection that could free them,
    and whether it collected at all.

    Collecting is the only way to judge a session held by a reference cycle (closed or not
    by a finalizer); it runs only if some record is still open, young generations first and
    a full collection only if records remain.
    """
    tracker.drain()
    found = still_open(records)
    collected = False
    for generation in (0, 1, 2):
        if not found:
            break
        gc.collect(generation)
        collected = True
        tracker.drain()
        found = still_open(found)
    return found, collected
