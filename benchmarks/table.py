"""The table benchmarks/run.py prints: one row per measure, its verdict against the target."""

from __future__ import annotations

import statistics

import paired


class Table:
    """Rows of measure, measured values, the figure judged, target, verdict."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def ratio(self, label: str, base: list[float], other: list[float], target: float,
              unit: str = "ms", scale: float = 1000.0) -> float:
        b, o = statistics.median(base), statistics.median(other)
        r = o / b
        spread = f"{min(other) * scale:.2f}-{max(other) * scale:.2f}"
        self.rows.append((label, f"{b * scale:.2f} -> {o * scale:.2f} {unit} ({spread})",
                          f"{r:.3f}", f"<= {target}", "ok" if r <= target else "MISSED"))
        return r

    def paired(self, label: str, est: paired.Estimate, target: float,
               unit: str = "us") -> None:
        """A paired row: the verdict on the median pair ratio of wall time."""
        scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
        self.rows.append((label, f"{est.off * scale:.1f} -> {est.on * scale:.1f} {unit}; pairs "
                          f"IQR {est.q1:.3f}-{est.q3:.3f}, 95% {est.lo:.3f}-{est.hi:.3f}; "
                          f"CPU {est.cpu:.3f} ({est.cpu_lo:.3f}-{est.cpu_hi:.3f}); "
                          f"{est.kept}/{est.pairs} pairs", f"{est.wall:.3f}",
                          f"<= {target}", ("ok" if est.wall <= target else "MISSED")
                          # the interval spans the target: this run cannot tell
                          + (", unresolved" if est.lo <= target <= est.hi else "")))

    def value(self, label: str, measured: str, shown: str, target: str, ok: bool) -> None:
        self.rows.append((label, measured, shown, target, "ok" if ok else "MISSED"))

    def print(self) -> None:
        head = ("measure", "medians (spread of the second; paired: see docs/performance.md)",
                "ratio", "target", "")
        widths = [max(len(r[i]) for r in [*self.rows, head]) for i in range(5)]
        for row in [head, *self.rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
