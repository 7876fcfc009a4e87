"""LeakSanitizer-style suppressions: `leak:PATTERN` globs, matched without regular expressions."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._report import Leak


class SuppressionError(ValueError):
    """A malformed suppressions file: the message names the file and line."""


def glob_match(pattern: str, text: str) -> bool:
    """`*` and `?` glob match in O(len(pattern) * len(text)) at worst, with no regex."""
    p = t = 0
    star = -1
    mark = 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star = p
            mark = t
            p += 1
        elif star != -1:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


class Suppressions:
    """The rules of one suppressions file."""

    def __init__(self, rules: list[str], path: str = "") -> None:
        self.rules = rules
        self.path = path

    @classmethod
    def load(cls, path: str) -> Suppressions:
        """Read a file; SuppressionError names the file and line of a malformed rule."""
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str = "<suppressions>") -> Suppressions:
        """Parse rules: one `leak:PATTERN` a line, `#` comments and blank lines ignored."""
        rules = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            kind, sep, pattern = line.partition(":")
            if sep != ":" or kind.strip() != "leak" or not pattern.strip() or "\0" in pattern:
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise SuppressionError(
                    f"{path}:{n}: expected 'leak:PATTERN', got {shown!r}")
            rules.append(pattern.strip())
        return cls(rules, path)

    def match(self, leak: Leak) -> str | None:
        """The first rule (as `leak:PATTERN`) that matches the leak, or None."""
        names = [leak.type]
        for frame in leak.frames:
            names.extend((frame.function, frame.module, frame.file))
        for pattern in self.rules:
            if any(glob_match(pattern, name) for name in names):
                return f"leak:{pattern}"
        return None
