"""`leakguard status` tells the truth: it is checked against what a new process really does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IS_ACTIVE = "import leakguard; print(leakguard.is_enabled())"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if "LEAKGUARD" not in k and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _status(python: str, env: dict[str, str], cwd: Path) -> str:
    r = subprocess.run([python, "-m", "leakguard", "status"], env=env, capture_output=True,
                       text=True, timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _active(python: str, env: dict[str, str], cwd: Path) -> bool:
    r = subprocess.run([python, "-c", IS_ACTIVE], env=env, capture_output=True, text=True,
                       timeout=120, cwd=cwd)
    return r.stdout.strip() == "True"


def test_the_users_own_sitecustomize(tmp_path: Path) -> None:
    own = tmp_path / "site"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nimport leakguard.auto  # on by default\n")
    env = _env(PYTHONPATH=str(own))
    assert _active(sys.executable, env, tmp_path)
    out = _status(sys.executable, env, tmp_path)
    path = own / "sitecustomize.py"
    assert f"leakguard install: no, but your own {path} imports leakguard.auto\n" in out
    assert (f"a Python process started here would be ACTIVE: LEAKGUARD is unset and your "
            f"{path} imports leakguard.auto\n") in out
    env["LEAKGUARD"] = "0"
    assert not _active(sys.executable, env, tmp_path)
    assert "would be dormant: LEAKGUARD='0' in the environment" in \
        _status(sys.executable, env, tmp_path)


def test_leakguard_only_on_pythonpath(tmp_path: Path) -> None:
    # the interpreter this venv was made from: leakguard is not installed in it, so no
    # startup hook; the checkout on PYTHONPATH is importable all the same
    base = os.path.join(sys.base_prefix, "bin", "python3")
    env = _env(PYTHONPATH=str(ROOT), LEAKGUARD="1")
    probe = subprocess.run([base, "-c", "import importlib.util as u, sys; "
                            "sys.exit(u.find_spec('wrapt') is None)"], env=env)
    if probe.returncode != 0:
        pytest.skip(f"{base} has no wrapt, which leakguard needs")
    assert not _active(base, env, tmp_path)
    out = _status(base, env, tmp_path)
    assert "startup hook (LEAKGUARD=1): none in this Python\n" in out
    assert (f"a Python process started here would be dormant: LEAKGUARD='1' in the "
            f"environment, but leakguard is importable here only through PYTHONPATH "
            f"({ROOT}): it has no startup hook") in out


def test_targets_leave_libraries_untracked(tmp_path: Path) -> None:
    out = _status(sys.executable, _env(LEAKGUARD_TARGETS="requests"), tmp_path)
    lines = {line.split()[0]: line for line in out.split("integrations:\n")[1].splitlines()}
    assert " tracked (supported" in lines["requests"]
    for name in ("aiohttp", "httpx", "urllib3"):
        assert "NOT tracked: LEAKGUARD_TARGETS=requests leaves it out" in lines[name], name


def _fake_dist(where: Path, module: str, dist: str, version: str, init: str,
               recorded: str | None = None) -> None:
    """A distribution `dist` that installs the package `module` (as pip leaves it)."""
    import base64
    import hashlib

    (where / module).mkdir(exist_ok=True)
    (where / module / "__init__.py").write_text(init)
    digest = base64.urlsafe_b64encode(hashlib.sha256(
        (recorded if recorded is not None else init).encode()).digest()).rstrip(b"=").decode()
    info = where / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,sha256={digest},{len(init)}\n"
                                 f"{info.name}/METADATA,,\n")


def test_urllib3_future_is_named_as_what_is_really_there(tmp_path: Path) -> None:
    # niquests installs urllib3-future, imported as `urllib3` (here over the real urllib3
    # of this environment, as its start-up .pth file does): not "not installed"
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "urllib3", "urllib3-future", "2.25.904", "__version__ = '2.25.904'\n")
    out = _status(sys.executable, _env(PYTHONPATH=str(site)), tmp_path)
    [line] = [x for x in out.splitlines() if x.startswith("  urllib3 ")]
    assert line.split() == ["urllib3", "2.25.904", "tracked", "(as", "urllib3-future;",
                            "supported:", ">=1.26,<3)"], out


def test_of_two_distributions_of_one_module_the_one_on_disk_is_named(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   ) -> None:
    from leakguard import _status

    site = tmp_path / "site"
    site.mkdir()
    # installed second, over the first one's files: only its recorded hash matches
    _fake_dist(site, "lgfakelib", "lgfakelib", "1.0", "v = 2\n", recorded="v = 1\n")
    _fake_dist(site, "lgfakelib", "lgfakelib-future", "2.0", "v = 2\n")
    monkeypatch.syspath_prepend(str(site))
    owners = _status._owners()["lgfakelib"]
    assert sorted(owners) == ["lgfakelib", "lgfakelib-future"]
    assert _status._installed("lgfakelib", owners) == ("lgfakelib-future", "2.0")
    assert _status._installed("lgfakelib-absent", []) is None


def test_a_bad_targets_value_is_named_as_the_program_names_it(tmp_path: Path) -> None:
    env = _env(LEAKGUARD_TARGETS="requets,httpx")
    out = _status(sys.executable, env, tmp_path)
    said = subprocess.run([sys.executable, "-c", "pass"], env={**env, "LEAKGUARD": "1"},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path).stderr
    assert said.startswith("leakguard: ignoring LEAKGUARD_TARGETS='requets,httpx': ")
    assert said.strip() in out, out
    lines = {line.split()[0]: line for line in out.split("integrations:\n")[1].splitlines()}
    assert " tracked (supported" in lines["requests"]  # ignored: everything is tracked
