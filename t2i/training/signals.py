"""Stopping on SIGINT / SIGTERM without losing work, and without making the signal wait.

A training loop stops after the step under way and saves it; but the work between steps —
samples, an evaluation of thousands of images, a few-step teacher's paths — can take minutes,
and a cluster kills a process 30 s after SIGTERM. So such work is run `interruptible()`: a
signal that arrives then raises `StopNow` at once, and the loop saves the last finished step.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

log = logging.getLogger(__name__)


class StopNow(BaseException):
    """Raised by the signal handler inside interruptible work (samples, evaluations, teacher
    paths) to stop it at once; the loop then saves the last finished step. A BaseException, so
    no `except Exception` in that work swallows it."""


class Stopping:
    """The signal side of a training loop: `signum` (the signal that asked it to stop, 0 if
    none), `stop_on_signals()` around the loop, `interruptible()` around work between steps.
    Needs `world` (the number of processes)."""

    signum = 0
    interruptible_now = False  # whether a signal stops the work under way at once

    @contextlib.contextmanager
    def stop_on_signals(self):
        """SIGINT and SIGTERM set `signum` (the loop stops after the step); a second one aborts
        at once. Outside the main thread signals cannot be caught, and are left alone."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signum:  # the second: abort now
                raise KeyboardInterrupt
            self.signum = signum
            if self.interruptible_now:
                log.warning("%s: stopping now, then saving the last finished step",
                            signal.Signals(signum).name)
                raise StopNow
            log.warning("%s: stopping after this step (again to abort at once)",
                        signal.Signals(signum).name)
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def interruptible(self, alone: bool = False):
        """Work a signal may stop at once (StopNow), not after it ends: samples and evaluations
        (rank 0 only; every rank meets the next step's signal exchange) and, with `alone`, work
        every rank does (interruptible only in a single process: ranks must stay in step)."""
        if alone and self.world > 1:
            yield
            return
        if self.signum:
            raise StopNow
        self.interruptible_now = True
        try:
            yield
        finally:
            self.interruptible_now = False
