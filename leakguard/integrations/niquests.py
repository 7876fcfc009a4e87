"""niquests.Session and niquests.AsyncSession: closed once close() is called (also by `with`)."""

from __future__ import annotations

from .requests import RequestsIntegration


class NiquestsIntegration(RequestsIntegration):
    """niquests.Session, niquests.AsyncSession and their subclasses: pools as for requests."""

    name = "niquests"
    module = "niquests"
    minimum = (3, 6)  # the first whose AsyncSession.close() closes (3.5: a no-op)
    below = (4,)
    response_name = "niquests.Response"  # stream=True: tracked as requests' responses
    # AsyncSession.__init__ does not call Session.__init__: listed first, so that its own
    # __init__ is wrapped too (a listed subclass would otherwise rely on super())
    classes = (("AsyncSession", "niquests.AsyncSession"), ("Session", "niquests.Session"))
    # AsyncSession.close is a coroutine function: calling it only notes the call, and the
    # session counts as closed once its pools hold no open connection (_base.patch)
    closers = ("close",)
