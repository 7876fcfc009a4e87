"""The long-running options: variables, enable() keywords and `leakguard run` flags."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_python

from leakguard._config import Options, options_from_env


def test_defaults_are_the_specs() -> None:
    o = Options()
    assert (o.responses, o.max_open, o.interval, o.sigterm, o.metrics) == (
        True, 100, 0.0, True, None)


@pytest.mark.parametrize(("variable", "raw", "keyword", "value"), [
    ("LEAKGUARD_RESPONSES", "off", "responses", False),
    ("LEAKGUARD_MAX_OPEN", "0", "max_open", 0),
    ("LEAKGUARD_MAX_OPEN", " 7 ", "max_open", 7),
    ("LEAKGUARD_INTERVAL", "0.5", "interval", 0.5),
    ("LEAKGUARD_INTERVAL", "3600", "interval", 3600.0),
    ("LEAKGUARD_SIGTERM", "no", "sigterm", False),
    ("LEAKGUARD_METRICS", "OTel", "metrics", "otel"),
    ("LEAKGUARD_METRICS", "off", "metrics", None),
])
def test_variables_parse(variable: str, raw: str, keyword: str, value: object) -> None:
    found = options_from_env({variable: raw})
    assert getattr(Options(**found), keyword) == value


@pytest.mark.parametrize(("variable", "raw", "accepted"), [
    ("LEAKGUARD_RESPONSES", "maybe", "accepted values are 1 true yes on (on)"),
    ("LEAKGUARD_MAX_OPEN", "-1", "accepted values are whole numbers from 0 to"),
    ("LEAKGUARD_MAX_OPEN", "2.5", "accepted values are whole numbers from 0 to"),
    ("LEAKGUARD_INTERVAL", "-3", "accepted values are numbers of seconds from 0 (off)"),
    ("LEAKGUARD_INTERVAL", "nan", "accepted values are numbers of seconds from 0 (off)"),
    ("LEAKGUARD_INTERVAL", "1e400", "accepted values are numbers of seconds from 0 (off)"),
    ("LEAKGUARD_SIGTERM", "2", "accepted values are 1 true yes on (on)"),
    ("LEAKGUARD_METRICS", "prometheus", "accepted values are otel or 0 false no off"),
])
def test_bad_value_is_one_line_and_the_program_runs(variable: str, raw: str,
                                                     accepted: str) -> None:
    r = run_python("print('ran')", env={"LEAKGUARD": "1", variable: raw})
    assert r.returncode == 0 and r.stdout == "ran\n"
    assert r.stderr.splitlines() == [
        f"leakguard: ignoring {variable}={raw!r}: " + r.stderr.split(": ", 2)[2].rstrip("\n")]
    assert accepted in r.stderr


def test_enable_keywords() -> None:
    import leakguard
    from leakguard import _api

    leakguard.enable(responses=False, max_open=5, interval=0, sigterm=False, metrics=None)
    try:
        o = _api._STATE.options
        assert (o.responses, o.max_open, o.interval, o.sigterm, o.metrics) == (
            False, 5, 0.0, False, None)
    finally:
        leakguard.disable()
    with pytest.raises(ValueError, match="whole numbers"):
        leakguard.enable(max_open=-1)


def test_run_flags_reach_the_child() -> None:
    code = ("import os; print(*[os.environ.get('LEAKGUARD_' + v) for v in "
            "('RESPONSES', 'MAX_OPEN', 'INTERVAL', 'SIGTERM', 'METRICS')])")
    r = subprocess.run([sys.executable, "-m", "leakguard", "run", "--responses", "off",
                        "--max-open", "3", "--interval", "0.25", "--sigterm", "no",
                        "--metrics", "otel", "--", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["off", "3", "0.25", "no", "otel"]


def test_run_rejects_a_bad_flag_value() -> None:
    r = subprocess.run([sys.executable, "-m", "leakguard", "run", "--max-open", "many",
                        "--", sys.executable, "-c", "pass"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "whole numbers" in r.stderr
