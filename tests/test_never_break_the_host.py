"""leakguard's own failures never reach the program."""

from __future__ import annotations

import gc

import pytest
import requests
from conftest import SERVER_SNIPPET, Reports, run_python

import leakguard
from leakguard import _stacks, _tracker

pytestmark = pytest.mark.allow_internal_errors


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected")


def test_failing_stack_capture(reports: Reports, server_url: str,
                               monkeypatch: pytest.MonkeyPatch,
                               internal_errors_fail: list[str]) -> None:
    monkeypatch.setattr(_stacks, "capture", _boom)
    s = requests.Session()
    assert isinstance(s, requests.Session)
    assert s.get(server_url).status_code == 200
    s.close()
    assert internal_errors_fail  # swallowed, and said


def test_failing_tracker(reports: Reports, server_url: str, monkeypatch: pytest.MonkeyPatch,
                         internal_errors_fail: list[str]) -> None:
    monkeypatch.setattr(_tracker.Tracker, "track", _boom)
    monkeypatch.setattr(_tracker.Tracker, "close", _boom)
    with requests.Session() as s:
        assert s.get(server_url).status_code == 200
    places = {e.split(":")[0] for e in internal_errors_fail}
    # never tracked, so its close has nothing to forget (and no stack is taken for it)
    assert places == {"tracking a new requests session"}


def test_failing_close(reports: Reports, server_url: str, monkeypatch: pytest.MonkeyPatch,
                       internal_errors_fail: list[str]) -> None:
    monkeypatch.setattr(_tracker.Tracker, "close", _boom)
    with requests.Session() as s:
        assert s.get(server_url).status_code == 200
    places = {e.split(":")[0] for e in internal_errors_fail}
    # requests' close clears its PoolManagers, which are its own: not tracked, not closed
    assert places == {"closing a requests session"}


def test_failing_reporter(reports: Reports, server_url: str, monkeypatch: pytest.MonkeyPatch,
                          internal_errors_fail: list[str]) -> None:
    monkeypatch.setattr(_tracker.TRACKER, "on_leaks", _boom)
    requests.Session().get(server_url)
    gc.collect()
    assert internal_errors_fail


def test_failing_pool_reader_still_reports(reports: Reports, server_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from leakguard.integrations.requests import RequestsIntegration

    monkeypatch.setattr(RequestsIntegration, "connections", _boom)
    requests.Session().get(server_url)
    [text] = reports.warnings()
    assert "(open connections unknown; created" in text


def test_exceptions_from_the_original_pass_through_unchanged(reports: Reports) -> None:
    class Broken(requests.Session):
        def close(self) -> None:
            super().close()
            raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        Broken().close()
    with pytest.raises(TypeError):
        requests.Session(1, 2)  # type: ignore[call-arg]


def test_import_never_fails_when_patching_fails() -> None:
    code = SERVER_SNIPPET + '''
import leakguard.integrations._base as base
def broken(self, mod):
    raise RuntimeError("injected patch failure")
base.Integration.patch = broken
import requests
print(requests.get(URL).status_code)
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0
    assert r.stdout == "200\n"
    assert r.stderr.count("leakguard: internal error in patching requests after its import: "
                          "RuntimeError: injected patch failure") == 1


def test_patch_twice_is_a_noop_and_disable_restores(reports: Reports) -> None:
    from leakguard import _api

    integration = _api._STATE.integrations["requests"]
    patched_init = requests.Session.__dict__["__init__"]
    integration.patch(requests)
    assert requests.Session.__dict__["__init__"] is patched_init
    leakguard.disable()
    assert not hasattr(requests.Session.__dict__["__init__"], "__wrapped__")
    assert not hasattr(requests.Session.__dict__["close"], "__wrapped__")
    assert not leakguard.is_enabled()
    leakguard.enable()
    assert hasattr(requests.Session.__dict__["__init__"], "__wrapped__")
