"""A background thread that revisits the resources a reconciler reports active (progress mirroring, retries).

kopf's own timers run one task per resource and make kopf put a finalizer on every resource (one more write
each, and a deletion that waits for the operator); one thread over the active set costs neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)
Key = tuple[str, str]


class Poller:
    """Every ``interval`` seconds, ``visit(namespace, name)`` for each key ``active()`` returns."""

    def __init__(self, interval: float, active: Callable[[], Iterable[Key]], visit: Callable[[str, str], object]):
        self.interval, self._active, self._visit = interval, active, visit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stockpot-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for namespace, name in list(self._active()):
                if self._stop.is_set():
                    return
                try:
                    self._visit(namespace, name)
                except Exception:  # one resource's failure must not stop the others' polling
                    log.exception("%s/%s: periodic reconcile failed", namespace, name)
