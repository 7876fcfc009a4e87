"""The `leakguard` command line (also `python -m leakguard`)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from ._config import ALL_TARGETS, RUN_STATUS, Options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

OPTION_FLAGS = (
    ("--log", "log", "LEAKGUARD_LOG", "warning: leaks only; debug: every session's life"),
    ("--stack-depth", "stack_depth", "LEAKGUARD_STACK_DEPTH", "frames kept per creation stack"),
    ("--exitcode", "exitcode", "LEAKGUARD_EXITCODE",
     "exit with this status if COMMAND exited 0 but a session leaked in any of its "
     "processes"),
    ("--report", "report", "LEAKGUARD_REPORT",
     "append JSON Lines leak records to this file (%%p: the pid)"),
    ("--suppressions", "suppressions", "LEAKGUARD_SUPPRESSIONS", "suppressions file"),
    ("--targets", "targets", "LEAKGUARD_TARGETS",
     f"comma list of {','.join(ALL_TARGETS)} (default: all)"),
    ("--responses", "responses", "LEAKGUARD_RESPONSES",
     "on/off: also track responses that hold a connection (default: on)"),
    ("--max-open", "max_open", "LEAKGUARD_MAX_OPEN",
     "warn once per creation site when this many sessions from it are open at once; "
     "0: off (default: 100)"),
    ("--interval", "interval", "LEAKGUARD_INTERVAL",
     "seconds between census reports in a long-running process; 0: off (default)"),
    ("--sigterm", "sigterm", "LEAKGUARD_SIGTERM",
     "on/off: report at SIGTERM when the program has no handler of its own (default: on)"),
    ("--metrics", "metrics", "LEAKGUARD_METRICS",
     "otel: publish open and leak counts through the OpenTelemetry metrics API "
     "(default: off)"),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leakguard",
        description="Find leaked HTTP client sessions (requests, aiohttp, httpx, urllib3).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run a command with leakguard active in it and its Python subprocesses",
        description="Run COMMAND with leakguard active in every Python process it starts. "
                    "Exits with COMMAND's status, or with --exitcode if it exited 0 but "
                    "leaked. Example: leakguard run --exitcode 3 -- pytest -x")
    for flag, dest, variable, text in OPTION_FLAGS:
        # --exitcode is applied by `run` itself, from every process's leak count
        note = "" if dest == "exitcode" else f" (sets {variable})"
        run.add_argument(flag, dest=dest, metavar="VALUE", help=text + note)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS...]")
    inst = sub.add_parser(
        "install", help="make leakguard active by default in this environment",
        description="Add `import leakguard.auto` to this virtualenv's sitecustomize.py, so "
                    "that every Python process of the environment runs with leakguard; "
                    "LEAKGUARD=0 still turns it off for one process.")
    inst.add_argument("--system", action="store_true",
                      help="allow installing into a Python that is not a virtualenv")
    sub.add_parser("uninstall", help="undo `leakguard install` exactly")
    sub.add_parser("status", help="what is installed, and whether this process would be active")
    rep = sub.add_parser("report", help="summarize JSON Lines leak reports (LEAKGUARD_REPORT)")
    rep.add_argument("files", nargs="+", metavar="FILE")
    rep.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(parser, args)
    if args.command in ("install", "uninstall"):
        from . import _install

        try:
            if args.command == "install":
                print(_install.install(system=args.system))
            else:
                print(_install.uninstall())
        except (_install.InstallError, OSError) as exc:
            print(f"leakguard {args.command}: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "status":
        from ._status import status

        print(status())
        return 0
    if args.command == "report":
        from ._summary import summarize_files

        return summarize_files(args.files, as_json=args.json)
    parser.print_help()
    return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        parser.error("run: missing COMMAND (e.g. leakguard run python app.py)")
    env = dict(os.environ)
    env["LEAKGUARD"] = "1"
    chosen = {dest: getattr(args, dest) for _, dest, _, _ in OPTION_FLAGS
              if getattr(args, dest) is not None}
    try:
        Options(**chosen)
    except ValueError as exc:
        parser.error(f"run: {exc}")
    for _, dest, variable, _ in OPTION_FLAGS:
        if dest in chosen:
            env[variable] = str(chosen[dest])
    # the exit status is decided here, from every process's count: children keep theirs
    exitcode = env.pop("LEAKGUARD_EXITCODE", None)
    fd, status_file = tempfile.mkstemp(prefix="leakguard-run-", suffix=".jsonl")
    os.close(fd)
    env[RUN_STATUS] = status_file
    try:
        status = _spawn(argv, env)
        leaked = _count_leaks(status_file)
    finally:
        os.unlink(status_file)
    if status == 0 and leaked and exitcode not in (None, ""):
        try:
            return Options(exitcode=exitcode).exitcode or 0
        except ValueError as exc:
            print(f"leakguard: ignoring LEAKGUARD_EXITCODE={exitcode!r}: {exc}", file=sys.stderr)
    return status


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    try:
        proc = subprocess.Popen(argv, env=env)
    except FileNotFoundError:
        print(f"leakguard run: {argv[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"leakguard run: {argv[0]}: permission denied", file=sys.stderr)
        return 126
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # the child got the same SIGINT: wait for it to finish
            continue
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, like a shell


def _count_leaks(path: str) -> int:
    import json

    total = 0
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    total += int(json.loads(line).get("leaks", 0))
                except (ValueError, AttributeError):
                    continue
    except OSError:
        return 0
    return total


