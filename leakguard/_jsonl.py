"""JSON Lines leak records, appended so that processes sharing one file never interleave."""

from __future__ import annotations

import json
import os
import sys

_failed: set[str] = set()


def expand(path: str) -> str:
    """The report path with every `%p` replaced by this process's pid."""
    return path.replace("%p", str(os.getpid()))


def append(path: str, record: dict[str, object]) -> bool:
    """Append one record as one line with a single write; say once on stderr if it fails."""
    target = expand(path)
    data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o666)  # the user's umask applies
        try:
            written = os.write(fd, data)  # O_APPEND: one write lands whole at the end
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)
    except OSError as exc:
        if target not in _failed:
            _failed.add(target)
            try:
                sys.stderr.write(f"leakguard: cannot write the leak report {target!r}: "
                                 f"{exc.strerror or exc}; reports go to the log only\n")
            except Exception:
                pass
        return False
    return True
