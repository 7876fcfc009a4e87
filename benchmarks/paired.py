"""Off/on ratios from many short rounds paired back to back: the runner and the estimator.

Every pair is an off round and an on round run one right after the other (in alternating
order), so both meet the same load on the machine; the estimate is the median of the
per-pair ratios on/off, not the ratio of two medians taken over minutes. Pairs in which
either round was visibly disturbed (the process got much less of the CPU than its mode's
usual share of the wall time: it was waiting for a core) are set aside, by a rule that
looks only at each round against its own mode, never at the ratio. The spread shown is
the interquartile range of the kept pairs' ratios and a distribution-free 95 % confidence
interval of their median (order statistics of the binomial, no resampling).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Sequence
from typing import Callable, NamedTuple, TypeVar

# a round whose CPU share of the wall time fell below this fraction of its mode's median
# share was waiting for a core (other load), not for the server
DISTURBED = 0.8


T = TypeVar("T")


class Estimate(NamedTuple):
    """The paired estimate of one row."""

    off: float  # median seconds per operation, kept pairs
    on: float
    wall: float  # median of the kept pairs' wall ratios: the verdict
    q1: float  # interquartile range of those ratios
    q3: float
    lo: float  # 95 % confidence interval of the median ratio
    hi: float
    cpu: float  # median of the kept pairs' CPU ratios (the client process alone)
    cpu_lo: float
    cpu_hi: float
    kept: int
    pairs: int


def quantile(xs: Sequence[float], q: float) -> float:
    """The q-quantile of xs, interpolated between order statistics."""
    s = sorted(xs)
    pos = (len(s) - 1) * q
    i = int(pos)
    return s[i] if i + 1 >= len(s) else s[i] + (s[i + 1] - s[i]) * (pos - i)


def median_ci(xs: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: two order statistics."""
    s = sorted(xs)
    n = len(s)
    if n < 6:  # too few for any interval at 95 %: the whole range
        return s[0], s[-1]
    # the largest j with P(Binomial(n, 1/2) < j) <= (1 - level) / 2
    tail, j, total = 0, 0, 2 ** n
    while (tail + math.comb(n, j)) / total <= (1 - level) / 2:
        tail += math.comb(n, j)
        j += 1
    j = max(j, 1)
    return s[j - 1], s[n - j]


def estimate(off: Sequence[Sequence[float]], on: Sequence[Sequence[float]]) -> Estimate:
    """The estimate from rounds [wall, cpu, ...] per operation, pair by pair (off[i], on[i])."""
    share_off = statistics.median(r[1] / r[0] for r in off)
    share_on = statistics.median(r[1] / r[0] for r in on)
    kept = [(a, b) for a, b in zip(off, on)
            if a[1] / a[0] >= DISTURBED * share_off and b[1] / b[0] >= DISTURBED * share_on]
    if len(kept) < max(6, len(off) // 4):  # the whole run was disturbed: keep every pair
        kept = list(zip(off, on))
    wall = [b[0] / a[0] for a, b in kept]
    cpu = [b[1] / a[1] for a, b in kept]
    lo, hi = median_ci(wall)
    cpu_lo, cpu_hi = median_ci(cpu)
    return Estimate(statistics.median(a[0] for a, _ in kept),
                    statistics.median(b[0] for _, b in kept),
                    statistics.median(wall), quantile(wall, 0.25), quantile(wall, 0.75),
                    lo, hi, statistics.median(cpu), cpu_lo, cpu_hi, len(kept), len(off))


def clock() -> tuple[float, float, int]:
    """Wall and CPU seconds and involuntary context switches of this process so far."""
    import resource

    return (time.perf_counter(), time.process_time(),
            resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def run(run_round: Callable[[], list[float]], pairs: int,
        extra: tuple[str, ...] = (), every: int = 1) -> dict[str, list[list[float]]]:
    """`pairs` off/on pairs of short rounds, back to back, in this one process (a worker).

    The order inside a pair alternates (off-on, on-off: ABBA), so neither mode always goes
    first; each round starts after a collection, from the same state. A round returns
    [wall, cpu, switches] (seconds per operation, involuntary context switches). `extra`
    modes (tracemalloc) run after every `every`-th pair.
    """
    out: dict[str, list[list[float]]] = {m: [] for m in ("off", "on", *extra)}
    warm_up(run_round)

    def one(mode: str) -> None:
        gc.collect()
        out[mode].append(in_mode(mode, run_round))

    for k in range(pairs):
        for mode in ("off", "on") if k % 2 == 0 else ("on", "off"):
            one(mode)
        if extra and k % every == 0:
            for mode in extra:
                one(mode)
    return out


def warm_up(run_round: Callable[[], object]) -> None:
    """One untimed round in each mode: imports, caches, the first stack, and what the first
    enable() leaves for good (its variable in os.environ, which requests reads at every
    request), so that every timed round, off or on, starts from the same state."""
    import leakguard

    run_round()
    leakguard.enable()
    try:
        run_round()
    finally:
        leakguard.disable()


def in_mode(mode: str, run_round: Callable[[], T]) -> T:
    """One round with leakguard off, on, or tracemalloc (25 frames) on."""
    import tracemalloc

    import leakguard

    if mode == "on":
        leakguard.enable()
    elif mode == "tracemalloc":
        tracemalloc.start(25)
    try:
        return run_round()
    finally:
        leakguard.disable()
        tracemalloc.stop()
