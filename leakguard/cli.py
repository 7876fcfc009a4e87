"""The `leakguard` command line (also `python -m leakguard`)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from ._config import (
    ALL_TARGETS,
    OPTION_HELP,
    RUN_STATUS,
    OptionError,
    Options,
    flag_of,
    variable_of,
)
from ._dist import DIST, version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away

# options whose value is a path: resolved once, in the directory where `run` was typed
PATH_OPTIONS = ("report", "suppressions")

COMMON_STATUS = (("2", "usage error (unknown option, bad value)"),
                 (str(SIGPIPE_STATUS), "its output was cut short by a closed pipe (`| head`)"))


def _epilog(*lines: tuple[str, str]) -> str:
    return "exit status:\n" + "\n".join(f"  {code:<6} {text}"
                                          for code, text in (*lines, *COMMON_STATUS))


class _Formatter(argparse.HelpFormatter):
    """Fills each line of a description on its own; keeps indented lines (tables) as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line.startswith(" ") else
                         super(_Formatter, self)._fill_text(line, width, indent)
                         for line in text.splitlines())


class _Version(argparse.Action):
    """--version, reading the installed metadata only when asked."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"leakguard ({DIST}) {version()}")
        parser.exit()


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line's parser, and its `run` subparser (whose errors name `run`)."""
    raw = _Formatter
    p = argparse.ArgumentParser(
        prog="leakguard", formatter_class=raw,
        description="Find leaked HTTP client sessions and responses "
                    f"({', '.join(ALL_TARGETS)}). Installed with `pip install leakguard-http`.",
        epilog="Switch it on without a command: LEAKGUARD=1 python app.py\n"
               "`leakguard COMMAND --help` describes each command and its exit status.\n\n"
               + _epilog(("0", "success; see each command for the others")))
    p.add_argument("--version", action=_Version, help="print leakguard's version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", formatter_class=raw,
        help="run a command with leakguard active in it and its Python subprocesses",
        description="Run COMMAND with leakguard active in every Python process it starts. "
                    "Each option sets its LEAKGUARD_* variable for them; relative paths are "
                    "resolved here, once.\nExample: leakguard run --exitcode 3 -- pytest -x",
        epilog=_epilog(("N", "COMMAND's own exit status"),
                       ("E", "with --exitcode E: COMMAND exited 0 but leaked in one of its "
                             "processes"),
                       ("126", "COMMAND is not executable"), ("127", "COMMAND was not found"),
                       ("128+N", "COMMAND was killed by signal N")))
    for keyword, text in OPTION_HELP.items():
        # --exitcode is applied by `run` itself, from every process's leak count
        note = "" if keyword == "exitcode" else f" (sets {variable_of(keyword)})"
        run.add_argument(flag_of(keyword), dest=keyword, metavar="VALUE",
                         help=text.replace("%", "%%") + note)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS...]")
    inst = sub.add_parser(
        "install", formatter_class=raw,
        help="make leakguard active by default in this environment",
        description="Make leakguard active in every Python process of this virtualenv: "
                    "`import leakguard.auto` in the environment's sitecustomize.py, or, where "
                    "Python imports another sitecustomize.py first (Debian's and Ubuntu's "
                    "system Python), a leakguard-install.pth file in its site-packages. "
                    "LEAKGUARD=0 still turns it off for one process.",
        epilog=_epilog(("0", "installed (or it already was)"),
                       ("1", "refused or failed: the message says why; nothing was changed")))
    inst.add_argument("--system", action="store_true",
                      help="allow installing into a Python that is not a virtualenv")
    sub.add_parser(
        "uninstall", formatter_class=raw, help="undo `leakguard install` exactly",
        description="Remove exactly what `leakguard install` added (the sitecustomize.py "
                    "block or the leakguard-install.pth file), leaving the rest as it was.",
        epilog=_epilog(("0", "removed (or nothing was installed)"),
                       ("1", "failed: the message says why")))
    sub.add_parser(
        "status", formatter_class=raw,
        help="what is installed, and whether a new Python process would be active",
        description="Say how leakguard is installed in this environment, whether a Python "
                    "process started here would run with it, and which client libraries it "
                    "tracks.",
        epilog=_epilog(("0", "the report was printed")))
    rep = sub.add_parser(
        "report", formatter_class=raw,
        help="summarize JSON Lines leak reports (LEAKGUARD_REPORT)",
        description="One summary, grouped by creation site, of the leak records of many "
                    "processes. A FILE may be a glob pattern (quoted or not); a pattern or file "
                    "that matches nothing means nothing leaked, and is only noted on stderr.",
        epilog=_epilog(("0", "no leak recorded (also when no file matched)"),
                       ("1", "leaks recorded"),
                       ("2", "no record could be read (unreadable files, malformed lines)")))
    rep.add_argument("files", nargs="+", metavar="FILE")
    rep.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p, run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`leakguard status | head`): stop quietly, like a Unix tool
        # killed by SIGPIPE; stdout goes to devnull so that the exit-time flush stays quiet
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return SIGPIPE_STATUS
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser, run_parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(run_parser, args)
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
        parser.error("missing COMMAND (e.g. leakguard run python app.py)")
    env = dict(os.environ)
    env["LEAKGUARD"] = "1"
    chosen = {keyword: getattr(args, keyword) for keyword in OPTION_HELP
              if getattr(args, keyword) is not None}
    try:
        Options(**chosen)
    except OptionError as exc:
        parser.error(f"{flag_of(exc.keyword)}: {exc.accepted}")
    for keyword, value in chosen.items():
        env[variable_of(keyword)] = str(value)
    for keyword in PATH_OPTIONS:
        # every child has its own working directory: a relative path means the one here
        variable = variable_of(keyword)
        if env.get(variable) and not os.path.isabs(env[variable]):
            env[variable] = os.path.abspath(env[variable])
    # the exit status is decided here, from every process's count: children keep theirs
    exitcode = env.pop(variable_of("exitcode"), None)
    fd, status_file = tempfile.mkstemp(prefix="leakguard-run-", suffix=".jsonl")
    os.close(fd)
    env[RUN_STATUS] = status_file
    try:
        status = _spawn(argv, env)
        leaked, started = _count_leaks(status_file)
    finally:
        os.unlink(status_file)
    if not started and status not in (126, 127):
        # not one process switched leakguard on: silence here is no all-clear
        print(f"leakguard run: no process of {argv[0]} switched leakguard on: is "
              "leakguard-http installed in the Python it runs? (`leakguard status`, run by "
              "that Python, says)", file=sys.stderr)
    if status == 0 and leaked and exitcode not in (None, ""):
        try:
            return Options(exitcode=exitcode).exitcode or 0
        except OptionError as exc:
            print(f"leakguard: ignoring LEAKGUARD_EXITCODE={exitcode!r}: {exc.accepted}",
                  file=sys.stderr)
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
    _forward_sigterm(proc)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # the child got the same SIGINT: wait for it to finish
            continue
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, like a shell


def _forward_sigterm(proc: subprocess.Popen[bytes]) -> None:
    # `docker stop` and systemd send SIGTERM to `leakguard run` (the container's process
    # 1): pass it on so that COMMAND reports its leaks and ends, and wait for it
    import signal

    def forward(signum: int, frame: object) -> None:
        try:
            proc.send_signal(signum)
        except OSError:  # already gone
            pass

    from . import _sigterm

    try:
        # leakguard's own report-at-SIGTERM handler (LEAKGUARD=1 here too) has nothing to
        # report in this launcher: forwarding replaces it; a program's own handler stays
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or _sigterm.installed():
            signal.signal(signal.SIGTERM, forward)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM
        pass


def _count_leaks(path: str) -> tuple[int, bool]:
    """The leaks `run`'s processes reported, and whether any switched leakguard on."""
    import json

    total = 0
    started = False
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    total += int(record.get("leaks", 0))
                    started = started or bool(record.get("started"))
                except (ValueError, AttributeError):
                    continue
    except OSError:
        return 0, False
    return total, started
