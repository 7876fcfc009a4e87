"""Leaks pinned on a test by the pytest plugin: one plain dict each, and the run's summary.

An entry is JSON-able so that it travels with the test report (pytest-xdist workers send
their reports to the controller, which writes the terminal summary).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._report import Leak

    Entry = dict[str, object]

EVENTS = {"gc": "garbage-collected without close()",
          "teardown": "still open after its test or fixture",
          "exit": "still open at a child process's exit"}
MAX_TESTS_PER_SITE = 3
MAX_SITES = 20
MAX_REPORTS = 20  # full reports in the terminal summary (warn mode); the rest: JSON Lines
MAX_REPORTS_PER_TEST = 10


def from_leak(leak: Leak, test: str, owner: str, hide: tuple[str, ...],
              soft: bool = False) -> Entry:
    """The entry of a leak found in this process (`soft`: shown, failing no test)."""
    from ._children import site_of

    entry: Entry = {"test": test, "owner": owner, "kind": getattr(leak, "kind", "session"),
                    "type": leak.type, "event": leak.event, "site": site_of(leak),
                    "text": leak.text(hide)}
    if soft:
        entry["soft"] = True
    return entry


def from_child(item: dict[str, object], test: str) -> Entry:
    """The entry of a leak that a child process sent through the private channel."""
    record = item["record"]
    assert isinstance(record, dict)
    return {"test": test, "owner": f"child process {record.get('pid')}",
            "kind": record.get("kind") or "session", "type": record.get("type"),
            "event": record.get("event"), "site": item.get("site") or record.get("site"),
            "text": item.get("text")}


def _noun(kind: object, n: int) -> str:
    word = "response" if kind == "response" else "session"
    return f"{n} {word}" + ("" if n == 1 else "s")


def counted(entries: Iterable[Entry]) -> str:
    """`1 session`, `2 sessions and 1 response`."""
    kinds: dict[object, int] = {}
    for e in entries:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    return " and ".join(_noun(k, kinds[k]) for k in _in_order(kinds))


def _in_order(kinds: Iterable[object]) -> list[object]:
    # sessions first, as in every other summary
    return sorted(set(kinds), key=lambda k: (k == "response", str(k)))


def describe(owner: str, test: str, entries: list[Entry]) -> str:
    """One owner's leaks in a test's report: a heading, then each full report (capped)."""
    where = ""
    if test and owner.startswith("fixture "):
        where = f", torn down after test {test}"
    elif test and owner.startswith("child "):
        where = f" during test {test}"
    if entries and entries[0].get("soft"):
        where += " (marked allow=True: it passes)"
    lines = [f"leakguard: {owner} leaked {counted(entries)}{where}"]
    lines += [str(e["text"]) for e in entries[:MAX_REPORTS_PER_TEST]]
    if len(entries) > MAX_REPORTS_PER_TEST:
        lines.append(f"leakguard: ... and {len(entries) - MAX_REPORTS_PER_TEST} more "
                     "(every one is in the JSON Lines report)")
    return "\n".join(lines)


def by_owner(entries: list[Entry]) -> list[tuple[str, str, list[Entry]]]:
    """(owner, test, entries) in order of first appearance."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((str(e["owner"]), str(e["test"])), []).append(e)
    return [(owner, test, found) for (owner, test), found in groups.items()]


def summary(entries: list[Entry], suppressed: int, full: bool, rest: str | None) -> list[str]:
    """The terminal section: the grouped summary by site, then capped reports (all if `full`,
    else those that failed no test)."""
    if not entries and not suppressed:
        return []
    clauses = []
    for kind in _in_order(str(e["kind"]) for e in entries):
        of_kind = [e for e in entries if e["kind"] == kind]
        counts = {ev: sum(1 for e in of_kind if e["event"] == ev) for ev in EVENTS}
        events = [f"{n} {EVENTS[ev]}" for ev, n in counts.items() if n]
        n, word = _noun(kind, len(of_kind)).split(" ", 1)
        clauses.append(f"{n} leaked {word}" + (f" ({', '.join(events)})" if events else ""))
    tests = {e["test"] for e in entries if e["test"]}
    head = f"leakguard: {'; '.join(clauses) or '0 leaked sessions'}"
    if entries:
        head += f" in {len(tests)} test{'' if len(tests) == 1 else 's'}"
    if suppressed:
        head += f", {suppressed} suppressed"
    lines = [head]
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((str(e["type"]), str(e["site"])), []).append(e)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    width = len(str(len(ordered[0][1]))) if ordered else 1
    for (typ, site), found in ordered[:MAX_SITES]:
        lines.append(f"  {len(found):>{width}} x {typ} created at {site}")
        names = list(dict.fromkeys(str(e["test"]) or "(outside any test)" for e in found))
        shown = ", ".join(names[:MAX_TESTS_PER_SITE])
        more = len(names) - MAX_TESTS_PER_SITE
        lines.append(f"  {'':>{width}}   in {shown}" + (f" and {more} more" if more > 0 else ""))
    if len(ordered) > MAX_SITES:
        lines.append(f"  ... and {len(ordered) - MAX_SITES} more sites")
    reports = entries if full else [e for e in entries if e.get("soft")]
    if reports:
        lines.append("")
        left = MAX_REPORTS
        for owner, test, found in by_owner(reports):
            if left <= 0:
                break
            lines.append(describe(owner, test, found[:left]))
            left -= len(found)
        if len(reports) > MAX_REPORTS:
            lines.append(f"leakguard: {len(reports) - MAX_REPORTS} more reports not shown")
    if rest and len(entries) > MAX_REPORTS:
        lines.append(f"leakguard: every report, as JSON Lines: {rest}")
    return lines
