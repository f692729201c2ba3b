"""Loaded by processes that tests run under libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1.

libfaketime 0.9.10 (Debian 12) breaks ``time.sleep`` in Python 3.11 in that mode: it passes a negative time to
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) and the call fails with EINVAL (wolfcw/libfaketime#426).
A timed wait on an event is the same monotonic sleep by another call, which libfaketime leaves alone.
"""

import threading
import time


def _sleep(seconds: float) -> None:
    threading.Event().wait(max(float(seconds), 0.0))


time.sleep = _sleep
