"""Time a real project's test suite as plain `pytest`, `pytest --leakguard` and `LEAKGUARD=1`.

`python benchmarks/real_suite.py [--rounds R] [--python PY] DIR -- PYTEST_ARGS...`

Runs the three configurations alternately in DIR (with PY, default this interpreter: it
needs the project's test dependencies and leakguard installed) and prints the medians and
ratios. What we ran, for the record (responses 0.26.3 from the package index, offline):

    python3 -m venv /tmp/rsuite && /tmp/rsuite/bin/pip install . pytest-asyncio \\
        pytest-httpserver tomli-w   # in this checkout, then in the unpacked sdist:
    /tmp/rsuite/bin/pip install -e .
    python benchmarks/real_suite.py --python /tmp/rsuite/bin/python --rounds 3 \\
        /path/to/responses-0.26.3 -- -p no:cacheprovider --asyncio-mode=auto responses
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytest_suite import _env, _timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("dir")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    argv = [args.python, "-m", "pytest", "-q", *args.pytest_args]
    configs = {"plain": (argv, _env({})),
               "--leakguard": ([*argv, "--leakguard"], _env({})),
               "LEAKGUARD=1": (argv, _env({"LEAKGUARD": "1"}))}
    wall: dict[str, list[float]] = {c: [] for c in configs}
    cpu: dict[str, list[float]] = {c: [] for c in configs}
    order = list(configs)
    for n in range(args.rounds):
        for name in order if n % 2 == 0 else reversed(order):
            w, c, _ = _timed(*configs[name], args.dir)
            wall[name].append(w)
            cpu[name].append(c)
    base_w, base_c = statistics.median(wall["plain"]), statistics.median(cpu["plain"])
    print(f"{' '.join(argv)}  (in {args.dir}, {args.rounds} rounds alternated)")
    for name in order:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:<12} wall {w:6.2f} s ({w / base_w:.3f}x)   "
              f"CPU {c:6.2f} s ({c / base_c:.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
