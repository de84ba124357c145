"""Time-based transitions, applied by a background thread and on demand after the clock moves."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends

from . import capacity, interruptions, lifecycle, warm_pool
from .runtime import RUNTIME

LOG = logging.getLogger(__name__)


def _backends() -> Iterator[AutoScalingBackend]:
    for account_id in list(autoscaling_backends.keys()):
        yield from list(autoscaling_backends[account_id].values())


def tick() -> None:
    """One pass: expire lifecycle actions, end Spot notices, finish warm-pool deletes, heal groups."""
    with RUNTIME.lock:
        now = RUNTIME.clock.now()
        interruptions.process_due(now)
        for backend in _backends():
            lifecycle.expire(backend, now)
            for group in list(backend.autoscaling_groups.values()):
                warm_pool.finalize_delete(group)
                capacity.replace_unhealthy(group)
                capacity.reconcile(group, from_ticker=True)


class Ticker:
    """Calls :func:`tick` every ``interval`` seconds in a daemon thread; ``interval <= 0``: never
    (tests that look at intermediate states call :func:`tick` themselves)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="spotmax-aws-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                tick()
            except Exception:  # pylint: disable=broad-exception-caught  # the ticker must outlive one bad pass
                LOG.exception("spotmax ticker pass failed")
