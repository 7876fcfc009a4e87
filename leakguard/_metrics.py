"""LEAKGUARD_METRICS=otel: open and leak counts through the OpenTelemetry metrics API only."""

from __future__ import annotations

import sys

from ._guard import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from ._census import Leaks
    from ._tracker import Record, Tracker

_instruments: list[Any] = []  # [the leaks counter], made once per process
_said: list[bool] = []


def start(tracker: Tracker, leaks: Leaks) -> bool:
    """Publish `leakguard.open` and `leakguard.leaks` on the meter `leakguard`.

    Only the API is used: the program's own SDK set-up (made before or after this; the
    API's proxy meter forwards) exports them. Without the API: one line on stderr.
    """
    try:
        from opentelemetry import metrics
    except ImportError:
        if not _said:
            _said.append(True)
            try:
                sys.stderr.write("leakguard: LEAKGUARD_METRICS=otel needs opentelemetry-api "
                                 "(pip install 'leakguard-http[otel]'); no metrics published\n")
            except Exception:  # stderr closed: the program runs on regardless
                pass
        return False
    if not _instruments:
        from . import __version__

        meter = metrics.get_meter("leakguard", __version__)

        def observe(options: object) -> Iterable[Any]:
            return _observe(metrics.Observation, tracker)

        meter.create_observable_up_down_counter(
            "leakguard.open", callbacks=[observe], unit="{object}",
            description="HTTP client sessions and responses open now, per creation site")
        _instruments.append(meter.create_counter(
            "leakguard.leaks", unit="{object}",
            description="Leaked HTTP client sessions and responses, per creation site"))
    counter = _instruments[0]

    def count(record: Record, event: str) -> None:
        site = record.site
        if site is not None:
            counter.add(1, {"kind": site.kind, "type": site.type_name, "event": event,
                            "site": site.text()})

    leaks.listeners.append(count)
    return True


def _observe(observation: Any, tracker: Tracker) -> list[Any]:
    # every site seen since enable (bounded: sites are code locations), 0 once all closed,
    # so that a series falls to zero instead of vanishing; open as census() counts it (the
    # library's own state, not only what leakguard saw closed)
    from ._census import rows

    found: list[Any] = []
    with guard("observing leakguard.open"):
        sites = tracker.sites
        every = getattr(sites, "all", None)
        now = {row.site: row.open for row in rows(tracker)}
        for site in every() if every is not None else ():
            found.append(observation(now.get(site, 0), {
                "kind": site.kind, "type": site.type_name, "site": site.text()}))
    return found
