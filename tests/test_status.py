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
