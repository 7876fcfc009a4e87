"""Client-side cost of one per-request workload, leakguard off or on, for deterministic counts.

`python benchmarks/cost.py NAME N URL off|on` runs workloads.REQUEST[NAME] (warmed up) N
times against URL (`workloads.py serve` in another process) and prints its CPU time per
request. Under valgrind the instruction counts are exact and repeatable on a busy machine:

    for n in 0 400; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/cost.py requests $n $URL on 2>&1 | grep refs; done

(refs at 400 minus refs at 0) / 400 is the instructions per request; the ratio on/off bounds
the client's CPU ratio from above (the server and the kernel are not counted).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads

import leakguard


def main() -> None:
    name, n, url, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # what the first enable() leaves (a variable requests reads per request): in both modes
    os.environ["_LEAKGUARD_ROOT_PID"] = str(os.getpid())
    namespace: dict[str, object] = {}
    exec(workloads.REQUEST[name], namespace)
    if mode == "on":
        leakguard.enable()
    namespace["setup"](url)  # type: ignore[operator]
    namespace["many"](50)  # type: ignore[operator]
    start = time.process_time()
    namespace["many"](n)  # type: ignore[operator]
    cpu = time.process_time() - start
    namespace["teardown"]()  # type: ignore[operator]
    print(f"{name} {mode}: {cpu / max(n, 1) * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    main()
