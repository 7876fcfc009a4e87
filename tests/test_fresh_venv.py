"""The install paths in a real fresh virtualenv, with a non-editable install of the wheel.

Runs on the oldest and the newest Python found (3.9 and 3.13 here); skipped, saying why,
when an interpreter is missing.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_MARK = "USER-SITECUSTOMIZE-RAN"
LEAKY = "import requests\nKEEP = requests.Session()\n"


def _find_python(version: str) -> str | None:
    candidates = [os.path.join(d, "bin", "python") for d in
                  sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*")))]
    which = shutil.which(f"python{version}")
    if which:
        candidates.append(which)
    for exe in candidates:
        # a pyenv shim for a version that is not selected exists but does not run
        if os.path.exists(exe) and subprocess.run([exe, "-c", "pass"],
                                                  capture_output=True).returncode == 0:
            return exe
    return None


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    [built] = out.glob("leakguard_http-*.whl")
    return built


def _snapshot(site: Path) -> dict[str, str]:
    """Every file of site-packages with its hash (bytecode caches left out)."""
    out = {}
    for path in sorted(site.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out[str(path.relative_to(site))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = str(root / "bin" / "python")
        self.leakguard = str(root / "bin" / "leakguard")
        [site] = root.glob("lib/python3.*/site-packages")
        self.site = site

    def run(self, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items()
                if "LEAKGUARD" not in k and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        full.update(env or {})
        return subprocess.run(list(args), env=full, capture_output=True, text=True,
                              timeout=300, cwd=self.root)


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_install_paths_in_a_fresh_virtualenv(tmp_path: Path, wheel: Path, version: str) -> None:
    python = _find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} interpreter found on PATH or in ~/.pyenv")
    subprocess.run([python, "-m", "venv", str(tmp_path / "env")], check=True)
    venv = Venv(tmp_path / "env")
    pip = venv.run(venv.python, "-m", "pip", "install", "-q", str(wheel), "requests")
    assert pip.returncode == 0, pip.stderr
    (venv.site / "sitecustomize.py").write_text(
        f"import sys\nsys.stderr.write({USER_MARK!r} + '\\n')\n")
    (tmp_path / "leaky.py").write_text(LEAKY)
    leaky = str(tmp_path / "leaky.py")
    before = _snapshot(venv.site)

    def python_run(env: dict[str, str] | None = None) -> str:
        r = venv.run(venv.python, leaky, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == ""
        assert r.stderr.startswith(USER_MARK + "\n")  # the user's sitecustomize still runs
        return r.stderr[len(USER_MARK) + 1:]

    # 1. the environment variable
    assert "leakguard: requests.Session still open at interpreter exit" in \
        python_run({"LEAKGUARD": "1"})
    assert python_run() == ""

    # 2. leakguard install: on by default, LEAKGUARD=0 turns it off
    r = venv.run(venv.leakguard, "install")
    assert r.returncode == 0, r.stderr
    assert "added leakguard to" in r.stdout
    assert "still open at interpreter exit" in python_run()
    assert python_run({"LEAKGUARD": "0"}) == ""
    assert "already installed" in venv.run(venv.leakguard, "install").stdout
    status = venv.run(venv.leakguard, "status").stdout
    assert f"leakguard install: yes, in {venv.site / 'sitecustomize.py'}" in status
    assert "would be ACTIVE: LEAKGUARD is unset and" in status
    assert "leakguard.pth" in status

    # 3. leakguard uninstall: byte for byte as before
    r = venv.run(venv.leakguard, "uninstall")
    assert r.returncode == 0, r.stderr
    assert _snapshot(venv.site) == before
    assert python_run() == ""
    assert "leakguard install: no\n" in venv.run(venv.leakguard, "status").stdout

    # 4. installed, then pip uninstall leakguard-http: startup prints nothing new
    assert venv.run(venv.leakguard, "install").returncode == 0
    r = venv.run(venv.python, "-m", "pip", "uninstall", "-y", "-q", "leakguard-http")
    assert r.returncode == 0, r.stderr
    assert not (venv.site / "leakguard.pth").exists()
    assert python_run({"LEAKGUARD": "1"}) == ""
    assert python_run() == ""


def test_install_without_a_sitecustomize_creates_and_removes_it(tmp_path: Path,
                                                                wheel: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "env")], check=True)
    venv = Venv(tmp_path / "env")
    pip = venv.run(venv.python, "-m", "pip", "install", "-q", "--no-deps", str(wheel))
    assert pip.returncode == 0, pip.stderr
    before = _snapshot(venv.site)
    assert "created" in venv.run(venv.leakguard, "install").stdout
    r = venv.run(venv.python, "-c", "import leakguard; print(leakguard.is_enabled())")
    assert r.stdout == "True\n"
    assert "removed" in venv.run(venv.python, "-m", "leakguard", "uninstall").stdout
    assert _snapshot(venv.site) == before
    assert not list((venv.site / "__pycache__").glob("sitecustomize.*")) if \
        (venv.site / "__pycache__").exists() else True


def test_install_refuses_a_system_python(tmp_path: Path) -> None:
    if sys.prefix != sys.base_prefix:
        base = os.path.join(sys.base_prefix, "bin", "python3")
    else:
        base = sys.executable
    # a plain interpreter with leakguard importable, but not a virtualenv
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([base, "-m", "leakguard", "install"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert "is not a virtual environment" in r.stderr and "--system" in r.stderr


DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_sitecustomize() -> str | None:
    """The sitecustomize.py that Debian's /usr/bin/python3 imports from its stdlib, if any."""
    if not os.path.exists(DEBIAN_PYTHON):
        return None
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import sys, sysconfig, os; "
                        "p = os.path.join(sysconfig.get_paths()['stdlib'], 'sitecustomize.py');"
                        "print(p if os.path.exists(p) else '')"], capture_output=True, text=True)
    return r.stdout.strip() or None


def test_install_on_debians_system_python(tmp_path: Path, wheel: Path) -> None:
    """A venv made from /usr/bin/python3, whose stdlib sitecustomize.py shadows the venv's."""
    system_sitecustomize = _debian_sitecustomize()
    if system_sitecustomize is None:
        pytest.skip(f"no {DEBIAN_PYTHON} with a sitecustomize.py in its standard library "
                    "(Debian's and Ubuntu's system Python have one)")
    made = subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(tmp_path / "env")],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"{DEBIAN_PYTHON} -m venv fails (python3-venv missing?): {made.stderr}")
    venv = Venv(tmp_path / "env")
    pip = venv.run(venv.python, "-m", "pip", "install", "-q", str(wheel), "requests")
    assert pip.returncode == 0, pip.stderr
    (tmp_path / "leaky.py").write_text(LEAKY)
    leaky = str(tmp_path / "leaky.py")
    which = "import sys; print(sys.modules['sitecustomize'].__file__)"
    assert venv.run(venv.python, "-c", which).stdout.strip() == system_sitecustomize
    before = _snapshot(venv.site)

    r = venv.run(venv.leakguard, "install")
    assert r.returncode == 0, r.stderr
    pth = venv.site / "leakguard-install.pth"
    assert r.stdout.startswith(f"created {pth}: Python imports {system_sitecustomize} rather "
                               f"than {venv.site / 'sitecustomize.py'}, so leakguard is "
                               "activated by this .pth file instead")
    assert not (venv.site / "sitecustomize.py").exists()
    assert "still open at interpreter exit" in venv.run(venv.python, leaky).stderr
    assert venv.run(venv.python, leaky, env={"LEAKGUARD": "0"}).stderr == ""
    # Debian's own sitecustomize still runs
    assert venv.run(venv.python, "-c", which).stdout.strip() == system_sitecustomize
    assert f"already installed in {pth}" in venv.run(venv.leakguard, "install").stdout
    status = venv.run(venv.leakguard, "status").stdout
    assert f"leakguard install: yes, by the .pth file {pth}\n" in status
    assert f"would be ACTIVE: LEAKGUARD is unset and {pth} switches it on" in status

    r = venv.run(venv.leakguard, "uninstall")
    assert (r.returncode, r.stdout) == (0, f"removed {pth}\n")
    assert _snapshot(venv.site) == before
    assert venv.run(venv.python, leaky).stderr == ""
    assert "leakguard install: no\n" in venv.run(venv.leakguard, "status").stdout

    # installed, then pip uninstall leakguard-http: the .pth stays behind, silent
    assert venv.run(venv.leakguard, "install").returncode == 0
    r = venv.run(venv.python, "-m", "pip", "uninstall", "-y", "-q", "leakguard-http")
    assert r.returncode == 0, r.stderr
    r = venv.run(venv.python, leaky)
    assert (r.returncode, r.stderr) == (0, "")
