"""LEAKGUARD_METRICS=otel: leakguard.open and leakguard.leaks, read by the SDK's reader."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import run_python

pytest.importorskip("opentelemetry.sdk.metrics")

READ = '''
    import gc, json, requests
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    {setup}
    KEPT = []
    def handler():
        KEPT.append(requests.Session())
    def dropped():
        s = requests.Session()
    for _ in range(3):
        handler()
    dropped()
    gc.collect()
    KEPT.pop().close()

    found = {{}}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                found.setdefault(sm.scope.name + " " + m.name, []).extend(
                    [dict(p.attributes), p.value] for p in m.data.data_points)
    print(json.dumps(found))
    for s in KEPT:
        s.close()
'''

# the program sets up its SDK after leakguard started (the startup hook): the API's proxy
# meter forwards leakguard's instruments to it
LATE = '''
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
'''


def _points(stdout: str) -> dict[str, list[list[object]]]:
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("order", ["sdk after leakguard", "sdk before enable()"])
def test_both_instruments_reach_the_programs_sdk(order: str) -> None:
    if order == "sdk after leakguard":
        env = {"LEAKGUARD": "1", "LEAKGUARD_METRICS": "otel"}
        setup = LATE
    else:
        env = {}
        setup = LATE + "\n    import leakguard\n    leakguard.enable(metrics='otel')\n"
    code = textwrap.dedent(READ.format(setup=setup)).splitlines()
    handler = 1 + code.index("    KEPT.append(requests.Session())")
    dropped = 1 + code.index("    s = requests.Session()")
    r = run_python(READ.format(setup=setup), env=env)
    assert r.returncode == 0, r.stderr
    found = _points(r.stdout)
    open_points = found["leakguard leakguard.open"]
    by_site = {str(attrs["site"]).rsplit("/", 1)[-1]: (attrs, value)
               for attrs, value in open_points}
    attrs, value = by_site[f"app.py:{handler} in handler"]
    assert value == 2
    assert attrs == {"kind": "session", "type": "requests.Session",
                     "site": attrs["site"]}
    assert by_site[f"app.py:{dropped} in dropped"][1] == 0  # closed or collected: down to zero
    [(leak_attrs, leaks)] = found["leakguard leakguard.leaks"]
    assert leaks == 1
    assert leak_attrs["event"] == "gc" and leak_attrs["kind"] == "session"
    assert leak_attrs["type"] == "requests.Session"
    assert str(leak_attrs["site"]).endswith(f"app.py:{dropped} in dropped")


def test_without_opentelemetry_one_line_says_so() -> None:
    r = run_python('''
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        import leakguard
        leakguard.enable(metrics="otel")
        leakguard.disable()
        leakguard.enable(metrics="otel")
        print("ran")
    ''')
    assert r.returncode == 0 and r.stdout == "ran\n"
    assert r.stderr == ("leakguard: LEAKGUARD_METRICS=otel needs opentelemetry-api "
                        "(pip install 'leakguard-http[otel]'); no metrics published\n")


def test_metrics_off_imports_no_opentelemetry() -> None:
    r = run_python('''
        import sys, requests
        s = requests.Session()
        s.close()
        print("opentelemetry" in sys.modules)
    ''', env={"LEAKGUARD": "1"})
    assert r.stdout == "False\n"
