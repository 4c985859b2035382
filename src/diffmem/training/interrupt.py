"""Stopping cleanly: a first Ctrl-C or SIGTERM becomes a stop between two updates."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequested(KeyboardInterrupt):
    """Raised by the training loop itself, before an update, after a first Ctrl-C (SIGINT) or
    SIGTERM; ``signum`` is the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class GracefulStop:
    """While training, a first SIGINT (Ctrl-C) or SIGTERM only sets ``received``: the loop
    then stops before its next update and saves. A second one acts as usual (SIGINT raises
    KeyboardInterrupt at once). Signals can be caught only in the main thread; elsewhere this
    does nothing and Ctrl-C interrupts directly. A signal the caller ignores stays ignored."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signum
        signal.signal(signum, self.previous[signum] or signal.SIG_DFL)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler or signal.SIG_DFL)  # None: set outside Python
        self.previous = {}
