"""Process settings that must be in place before numpy is first imported (``cli`` imports this first).

numpy's OpenBLAS starts a thread of its own at import. Nothing in tsstats multiplies matrices, and that thread,
started before ``serve`` holds back the stop signals, would be the one thread left to receive a SIGTERM sent
during start-up, and the process would die of it without flushing. One BLAS thread: none started.

The command line's exit statuses have their one home here too (``EXIT_OK``, ``EXIT_FAILURE``, ``EXIT_USAGE``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
