"""Issue 10 item 13: a library's warning raised in a patched method keeps its place."""

from __future__ import annotations

import sys
import traceback
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Reports

from leakguard.integrations import Integration

LIBRARY = '''
import warnings

class Client:
    def __init__(self, fail=False):
        warnings.warn("Client() is deprecated", DeprecationWarning, stacklevel=2)
        if fail:
            raise ValueError("refused")

    def close(self):
        warnings.warn("close() is deprecated", DeprecationWarning, stacklevel=2)

    def fetch(self):
        warnings.warn("fetch() is deprecated", DeprecationWarning, stacklevel=2)
'''


class FakeIntegration(Integration):
    name = "fakewarn"
    module = "fakewarnlib"
    classes = (("Client", "fakewarnlib.Client"),)
    closers = ("close",)
    requesters = ("fetch",)


@pytest.fixture
def client_class(tmp_path: Path, reports: Reports) -> Iterator[type]:
    module = types.ModuleType("fakewarnlib")
    module.__file__ = str(tmp_path / "fakewarnlib.py")
    Path(module.__file__).write_text(LIBRARY)
    exec(compile(LIBRARY, module.__file__, "exec"), module.__dict__)
    sys.modules["fakewarnlib"] = module
    integration = FakeIntegration()
    integration.patch(module)
    try:
        yield module.Client
    finally:
        integration.unpatch()
        del sys.modules["fakewarnlib"]


def test_stacklevel_2_names_the_callers_line(client_class: type) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = client_class()
        line = sys._getframe().f_lineno - 1
        c.fetch()
        c.close()
    assert [(w.filename, w.lineno, str(w.message)) for w in caught] == [
        (__file__, line, "Client() is deprecated"),
        (__file__, line + 2, "fetch() is deprecated"),
        (__file__, line + 3, "close() is deprecated")]


def test_filterwarnings_keyed_on_the_callers_module_still_match(client_class: type) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module=__name__)
        with pytest.raises(DeprecationWarning, match="Client"):
            client_class()


def test_a_traceback_through_the_wrapper_still_shows_source(client_class: type) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            client_class(fail=True)
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert "result = wrapped(*args, **kwargs)" in text
    assert 'raise ValueError("refused")' in text
