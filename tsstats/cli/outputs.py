"""Files the command line writes: the destination is checked first and appears only once complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tsstats.storage.files import remove_partial


class OutputError(ValueError):
    """The destination cannot be written; the message says which and why."""


def check_destination(path: str, force: bool) -> None:
    if os.path.isdir(path):
        raise OutputError(f"{path} is a directory; name a file")
    if os.path.exists(path) and not force:
        raise OutputError(f"{path} exists; pass --force to replace it")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"the directory {directory} is not writable")


@contextmanager
def atomic_output(path: str, force: bool = False) -> Iterator[str]:
    """A temporary path beside ``path``, renamed to it when the block succeeds and removed when it fails: no
    partial file is ever left under the destination's name."""
    check_destination(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    os.close(handle)
    os.unlink(temporary)  # DuckDB and downloads create it afresh
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        remove_partial(temporary)
        raise
