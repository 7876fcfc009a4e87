"""`leakguard report FILE...`: one grouped summary across JSON Lines reports of many processes."""

from __future__ import annotations

import json
import os
import sys

from . import _stacks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

NOT_LEAKS = ("crowd", "census", "reused")  # other events of LEAKGUARD_REPORT files


def site_of(stack: list[dict[str, object]], record: dict[str, object] | None = None) -> str:
    """The record's creation site as file:line in func: its `site`, else from its stack.

    The one definition is _stacks.site (the exit summary's); records written before the
    `site` field existed get the same rule applied to their stack.
    """
    site = record.get("site") if record is not None else None
    if isinstance(site, str) and site:
        return site
    return _stacks.site_text(*_stacks.site_of_frames(stack))


def read_records(paths: Iterable[str], censuses: dict[object, dict[str, object]] | None = None,
                 ) -> tuple[list[dict[str, object]], list[str]]:
    """Every leak record of the files, and a note for each unreadable line or file.

    `censuses`: filled with the latest "census" record of each process (by pid).
    """
    records: list[dict[str, object]] = []
    problems: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        problems.append(f"{path}:{n}: not a JSON record")
                        continue
                    if isinstance(rec, dict) and rec.get("event") in NOT_LEAKS:
                        if rec.get("event") == "census" and censuses is not None:
                            censuses[rec.get("pid")] = rec  # files are in time order
                        continue  # a long-running process's news, not a leak
                    if isinstance(rec, dict) and "type" in rec:
                        records.append(rec)
                    else:
                        problems.append(f"{path}:{n}: not a leakguard record")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return records, problems


def summarize(records: list[dict[str, object]]) -> dict[str, object]:
    """The grouped summary as data: totals and groups by (type, creation site)."""
    groups: dict[tuple[str, str], int] = {}
    for rec in records:
        stack = rec.get("stack")
        key = (str(rec.get("type")), site_of(stack if isinstance(stack, list) else [], rec))
        groups[key] = groups.get(key, 0) + 1
    return {
        "leaks": len(records),
        "gc": sum(1 for r in records if r.get("event") == "gc"),
        "exit": sum(1 for r in records if r.get("event") == "exit"),
        "processes": len({r.get("pid") for r in records}),
        # per kind (a record without one is a session's, from before responses were tracked)
        "kinds": {kind: {"leaks": len(mine),
                         "gc": sum(1 for r in mine if r.get("event") == "gc"),
                         "exit": sum(1 for r in mine if r.get("event") == "exit")}
                  for kind in ("session", "response")
                  for mine in [[r for r in records if r.get("kind", "session") == kind]]
                  if mine or kind == "session"},
        "groups": [{"count": n, "type": t, "site": s}
                   for (t, s), n in sorted(groups.items(), key=lambda kv: -kv[1])],
    }


def format_summary(data: dict[str, object]) -> str:
    """The summary in the same layout as the one printed at exit."""
    kinds = data.get("kinds") or {"session": data}
    assert isinstance(kinds, dict)
    clauses = []
    for kind, counts in kinds.items():  # one clause per kind, as at exit
        if not counts["leaks"] and len(kinds) > 1:
            continue  # no leaked sessions, only responses
        n = int(str(counts["leaks"]))
        parts = []
        if counts["gc"]:
            parts.append(f"{counts['gc']} garbage-collected without close()")
        if counts["exit"]:
            parts.append(f"{counts['exit']} still open at exit")
        clauses.append(f"{n} leaked {kind}{'' if n == 1 else 's'}"
                       + (f" ({', '.join(parts)})" if parts else ""))
    procs = int(str(data["processes"]))
    head = "leakguard: " + "; ".join(clauses)
    head += f" in {procs} process{'es' if procs != 1 else ''}"
    groups = data["groups"]
    assert isinstance(groups, list)
    width = len(str(groups[0]["count"])) if groups else 1
    lines = [head] + [f"  {g['count']:>{width}} x {g['type']} created at "
                      f"{_short(str(g['site']))}" for g in groups]
    return "\n".join(lines)


def format_censuses(censuses: list[dict[str, object]]) -> str:
    """The latest census of each process: its totals and its largest sites."""
    from ._census import TOP, age_text

    n = len(censuses)
    lines = [f"leakguard: latest census of {n} process{'es' if n != 1 else ''}"]
    for rec in censuses:
        totals = rec.get("open") if isinstance(rec.get("open"), dict) else {}
        assert isinstance(totals, dict)
        counts = {kind: int(str(totals.get(kind, 0))) for kind in ("session", "response")}
        parts = [f"{n} open {kind}{'' if n == 1 else 's'}" for kind, n in counts.items()
                 if n or kind == "session"]
        elapsed = float(str(rec.get("elapsed_s", 0)))
        lines.append(f"  process {rec.get('pid')}, after {elapsed:.0f} s: {', '.join(parts)}")
        sites = rec.get("sites") if isinstance(rec.get("sites"), list) else []
        assert isinstance(sites, list)
        width = max((len(str(row.get("open"))) for row in sites[:TOP]), default=1)
        for row in sites[:TOP]:
            age = age_text(float(str(row.get("oldest_age_s", 0))))
            lines.append(f"    {row.get('open'):>{width}} x {row.get('type')} open, created at "
                         f"{_short(str(row.get('site')))} (oldest {age})")
        if len(sites) > TOP:
            lines.append(f"    ... and {len(sites) - TOP} more sites")
    return "\n".join(lines)


def _short(site: str) -> str:
    path, sep, rest = site.partition(":")
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return site
    return (path if rel.startswith("..") else rel) + sep + rest


def expand_paths(args: list[str]) -> tuple[list[str], list[str]]:
    """The files named or matched by the arguments, and a note for each that matched nothing."""
    import glob

    paths: list[str] = []
    notes: list[str] = []
    for arg in args:
        if os.path.exists(arg):
            paths.append(arg)
            continue
        # a pattern the shell left as it was (nothing matched, or it was quoted)
        matches = sorted(glob.glob(arg)) if glob.has_magic(arg) else []
        if matches:
            paths.extend(matches)
        else:
            what = "matched no file" if glob.has_magic(arg) else "no such file"
            notes.append(f"{arg}: {what} (a report is written only when something leaked)")
    return paths, notes


def summarize_files(args: list[str], as_json: bool = False) -> int:
    """Print the summary of the files; exit status 1 if any leak was found, 2 if unreadable.

    A file or pattern that matched nothing is noted on stderr and is no error: leakguard
    writes a report file only when a process leaked.
    """
    paths, notes = expand_paths(args)
    for note in notes:
        print(f"leakguard report: {note}", file=sys.stderr)
    censuses: dict[object, dict[str, object]] = {}
    records, problems = read_records(paths, censuses)
    for p in problems:
        print(f"leakguard report: {p}", file=sys.stderr)
    if problems and not records and not censuses:
        return 2  # nothing could be read: the errors say so, no summary of nothing
    data = summarize(records)
    if censuses:
        data["census"] = list(censuses.values())
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(format_summary(data) if records else "leakguard: no leaked sessions")
        if censuses:
            print(format_censuses(list(censuses.values())))
    return 1 if records else 0
