"""LeakSanitizer-style suppressions: `leak:PATTERN` globs, matched without regular expressions."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol

    from ._frames import Frame

    class Leak(Protocol):
        """What a rule is matched against (a _report.Leak): declared here so the report
        imports the suppressions and never the other way round."""

        @property
        def type(self) -> str: ...
        @property
        def frames(self) -> Sequence[Frame]: ...


class SuppressionError(ValueError):
    """A malformed suppressions file: the message names the file and line."""


def glob_match(pattern: str, text: str) -> bool:
    """Glob match (`*` any run, `?` any one character) without regular expressions.

    The pattern is cut at each `*`; the pieces must appear in order, the first at the
    start and the last at the end. Taking the leftmost place for each middle piece is
    always right for globs, so there is no backtracking: the time grows with the lengths,
    never exponentially, whatever the input.
    """
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return len(text) == len(pattern) and _fits(pattern, text, 0)
    first, *middle, last = pieces
    if len(first) + len(last) > len(text):
        return False
    if not _fits(first, text, 0) or not _fits(last, text, len(text) - len(last)):
        return False
    at, end = len(first), len(text) - len(last)
    for piece in middle:
        found = _find(piece, text, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _fits(piece: str, text: str, at: int) -> bool:
    if "?" not in piece:
        return text.startswith(piece, at)
    return all(p == "?" or p == t for p, t in zip(piece, text[at:at + len(piece)])) and \
        at + len(piece) <= len(text)


def _find(piece: str, text: str, start: int, end: int) -> int:
    if "?" not in piece:
        return text.find(piece, start, end)  # linear-time substring search
    for at in range(start, end - len(piece) + 1):
        if _fits(piece, text, at):
            return at
    return -1


def covers(pattern: str, dotted: str) -> bool:
    """Whether a rule matches a module or class name, or a package it belongs to.

    A rule that matches a module also matches its submodules (`legacy_client` covers
    `legacy_client.api`), and `pkg.*` also matches `pkg` itself. "Some dotted prefix of the
    name matches PATTERN" is exactly "the name matches PATTERN.*", so it stays three linear
    glob matches, whatever the name.
    """
    return (glob_match(pattern, dotted) or glob_match(pattern + ".*", dotted)
            or (pattern.endswith(".*") and glob_match(pattern[:-2], dotted)))


def _strip_comment(line: str) -> str:
    # a `#` after whitespace starts a comment; one inside a pattern (a file name) does not
    for at, char in enumerate(line):
        if char == "#" and at > 0 and line[at - 1] in " \t":
            return line[:at].rstrip()
    return line


class Suppressions:
    """The rules of one suppressions file, and which of them have matched a leak so far."""

    def __init__(self, rules: list[str], path: str = "") -> None:
        self.rules = rules
        self.path = path
        self.matched: set[str] = set()  # rules (patterns) that matched at least one leak

    @classmethod
    def load(cls, path: str) -> Suppressions:
        """Read a file; SuppressionError names the file and line of a malformed rule."""
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str = "<suppressions>") -> Suppressions:
        """Parse rules: one `leak:PATTERN` a line, `#` comments (also trailing) ignored."""
        rules = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            line = _strip_comment(line)
            kind, sep, pattern = line.partition(":")
            if sep != ":" or kind.strip() != "leak" or not pattern.strip() or "\0" in pattern:
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise SuppressionError(
                    f"{path}:{n}: expected 'leak:PATTERN', got {shown!r}")
            rules.append(pattern.strip())
        return cls(rules, path)

    def match(self, leak: Leak) -> str | None:
        """The first rule (as `leak:PATTERN`) that matches the leak, or None.

        Every rule is tried, so that `never_matched()` leaves out a rule that matched a leak
        an earlier rule had already suppressed.
        """
        dotted = [leak.type]
        names: list[str] = []
        for frame in leak.frames:
            dotted.append(frame.module)
            names.extend((frame.function, frame.file))
        first = None
        for pattern in self.rules:
            if any(covers(pattern, name) for name in dotted if name) or \
                    any(glob_match(pattern, name) for name in names):
                self.matched.add(pattern)
                if first is None:
                    first = f"leak:{pattern}"
        return first

    def never_matched(self) -> list[str]:
        """The rules (as `leak:PATTERN`) that have matched no leak so far, in file order."""
        return [f"leak:{p}" for p in dict.fromkeys(self.rules) if p not in self.matched]
