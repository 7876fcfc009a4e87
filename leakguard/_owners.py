"""Owner bookkeeping: who owes each live record its close (the pytest plugin's tests)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._record import Record


class Owners:
    """owner -> its live records by seq: a verdict for one owner touches only its own.

    Not locked itself: the tracker calls it with its lock held.
    """

    def __init__(self) -> None:
        self._owned: dict[object, dict[int, Record]] = {}

    def add(self, record: Record) -> None:
        """A record with an owner became live (new, or reopened under a new seq)."""
        if record.owner is not None:
            self._owned.setdefault(record.owner, {})[record.seq] = record

    def drop(self, record: Record) -> None:
        """A record is no longer live."""
        owned = self._owned.get(record.owner) if record.owner is not None else None
        if owned is not None:
            owned.pop(record.seq, None)

    def of(self, owner: object) -> list[Record]:
        """The live records of one owner, in creation order."""
        found = self._owned.get(owner)
        return list(found.values()) if found else []

    def release(self, owner: object) -> None:
        """Forget an owner; its records that are still live stay tracked, unowned."""
        found = self._owned.pop(owner, None)
        for record in (found or {}).values():
            record.owner = None

    def clear(self) -> None:
        """Forget every owner."""
        self._owned.clear()
