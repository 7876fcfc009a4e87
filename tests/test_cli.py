"""The command line's manners: --version, --help, exit statuses, pipes, paths, bad values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEAKGUARD_CLI = [sys.executable, "-m", "leakguard"]
SUBCOMMANDS = ("run", "install", "uninstall", "status", "report")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    env.update(extra)
    return env


def _cli(*args: str, cwd: Path | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LEAKGUARD_CLI, *args], env=_env(), capture_output=True, text=True,
                          timeout=120, cwd=cwd, **kw)  # type: ignore[call-overload]


def test_version_names_the_distribution() -> None:
    from importlib import metadata

    import leakguard

    r = _cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"leakguard (leakguard-http) {metadata.version('leakguard-http')}\n"
    # from a checkout on PYTHONPATH, with no installed metadata: the package's own string
    r = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
                        "from leakguard.cli import main; sys.exit(main(['--version']))",
                        str(ROOT)], capture_output=True, text=True)
    assert r.stdout == f"leakguard (leakguard-http) {leakguard.__version__}\n"


def test_the_checkout_names_the_distribution_and_ships_a_license() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'name = "leakguard-http"' in text
    assert '"leakguard-http[test]"' in text and "leakguard[" not in text
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "the leakguard authors" in (ROOT / "LICENSE").read_text()
    assert "pip install leakguard-http" in _cli("--help").stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_a_description_and_its_exit_statuses(command: str) -> None:
    r = _cli(command, "--help")
    assert r.returncode == 0
    _usage, description, *_ = r.stdout.split("\n\n")
    assert description.strip() and not description.startswith(("positional", "options"))
    assert "\nexit status:\n  0 " in r.stdout or "\nexit status:\n  N " in r.stdout
    assert "\n  2      usage error" in r.stdout


def _broken_pipe_run(*args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, like `| head` that quit
    try:
        return subprocess.run([*LEAKGUARD_CLI, *args], env=_env(), stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    r = _broken_pipe_run("status")
    assert (r.returncode, r.stderr) == (141, "")
    report = tmp_path / "r.jsonl"
    record = {"event": "gc", "type": "requests.Session", "pid": 1, "stack": [
        {"file": "/app/a.py", "line": 3, "function": "f", "code": "x"}]}
    report.write_text(json.dumps(record) + "\n")
    for args in (["report", str(report)], ["report", "--json", str(report)]):
        r = _broken_pipe_run(*args)
        assert (r.returncode, r.stderr) == (141, ""), args


def test_relative_report_path_is_resolved_where_run_was_typed(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leak.py").write_text("import requests\nK = requests.Session()\n")
    # the child runs in another directory: its report still lands where `run` was typed
    r = _cli("run", "--report", "rel-%p.jsonl", "--", "sh", "-c",
             f"cd sub && exec {sys.executable} leak.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "sub").glob("*.jsonl")) == []
    assert len(list(tmp_path.glob("rel-*.jsonl"))) == 1
    r = _cli("report", "rel-*.jsonl", cwd=tmp_path)  # quoted: leakguard expands it itself
    assert r.returncode == 1
    assert r.stdout.startswith("leakguard: 1 leaked session (1 still open at exit)")


def test_run_says_when_no_process_switched_leakguard_on(tmp_path: Path) -> None:
    leak = tmp_path / "leak.py"
    leak.write_text("import requests\nK = requests.Session()\n")
    # a Python without the startup hook (-S: no site, so no leakguard): silence is no
    # all-clear, and run says so; the command's status is kept
    r = _cli("run", "--exitcode", "3", "--", sys.executable, "-S", "-c", "raise SystemExit(5)")
    assert r.returncode == 5
    assert r.stderr.splitlines() == [
        f"leakguard run: no process of {sys.executable} switched leakguard on: is "
        "leakguard-http installed in the Python it runs? (`leakguard status`, run by that "
        "Python, says)"]
    # leakguard on in the command: no note, the leak counted
    r = _cli("run", "--exitcode", "3", "--", sys.executable, str(leak))
    assert r.returncode == 3
    assert "switched leakguard on" not in r.stderr
    assert "requests.Session still open at interpreter exit" in r.stderr
    # on, nothing leaked: no note either
    r = _cli("run", "--", sys.executable, "-c", "import requests")
    assert (r.returncode, r.stderr) == (0, "")


def test_report_on_nothing_exits_zero_with_a_note(tmp_path: Path) -> None:
    r = _cli("report", "leaks-*.jsonl", "gone.jsonl", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout == "leakguard: no leaked sessions\n"
    assert "leakguard report: leaks-*.jsonl: matched no file" in r.stderr
    assert "leakguard report: gone.jsonl: no such file" in r.stderr
    (tmp_path / "dir.jsonl").mkdir()
    assert _cli("report", "dir.jsonl", cwd=tmp_path).returncode == 2  # unreadable: an error


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_report_on_an_unreadable_file_prints_only_the_error(tmp_path: Path,
                                                            flags: list[str]) -> None:
    (tmp_path / "bad.jsonl").write_text('{"event": "gc"\nnot json\n')
    r = _cli("report", *flags, "bad.jsonl", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""  # not "no leaked sessions" next to the error
    assert r.stderr == ("leakguard report: bad.jsonl:1: not a JSON record\n"
                        "leakguard report: bad.jsonl:2: not a JSON record\n")


@pytest.mark.parametrize(("flag", "value", "accepted"), [
    ("--log", "loud", "accepted values are warning, debug"),
    ("--stack-depth", "0", "accepted values are whole numbers from 1 to 1000"),
    ("--exitcode", "300", "accepted values are whole numbers from 0 to 255"),
    ("--targets", "curl", "accepted values are comma lists of"),
])
def test_a_bad_run_option_is_named(flag: str, value: str, accepted: str) -> None:
    r = _cli("run", flag, value, "--", sys.executable, "-c", "pass")
    assert r.returncode == 2
    assert f"leakguard run: error: {flag}: {accepted}" in r.stderr


def test_enable_names_the_bad_keyword() -> None:
    import leakguard

    with pytest.raises(ValueError, match=r"^log='loud': accepted values are warning, debug$"):
        leakguard.enable(log="loud")
    with pytest.raises(TypeError, match=r"^enable\(\) got an unknown keyword 'stackdepth'"):
        leakguard.enable(stackdepth=3)
    assert not leakguard.is_enabled()
