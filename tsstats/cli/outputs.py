"""Files the command line writes: the destination is checked first and appears only once complete."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tsstats.storage.export import remove_partial


class OutputError(ValueError):
    """The destination cannot be written; the message says which and why."""


def check_destination(path: str, force: bool) -> None:
    if os.path.isdir(path):
        raise OutputError(f"{path} is a directory; name a file")
    if os.path.exists(path) and not force:
        raise OutputError(f"{path} exists; pass --force to replace it")
    check_directory(path)


def check_directory(path: str) -> None:
    """The one rule of export, backup and synth: a file goes into a directory that exists and is writable
    (none of them creates directories)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"the directory {directory} is not writable")


STDOUT = "-"  # --out - : standard output, as other tools take it
FORMATS_BY_EXTENSION = {".csv": "csv", ".parquet": "parquet"}


def output_format(given: str | None, path: str) -> str:
    """The export's format: ``--format``, else the destination's extension (CSV for standard output); a
    contradiction between them is refused."""
    extension = os.path.splitext(path)[1].lower() if path != STDOUT else ""
    implied = FORMATS_BY_EXTENSION.get(extension)
    if given and implied and given != implied:
        raise OutputError(f"--format {given} contradicts --out {path} (a {implied} file name); drop one of them")
    if given:
        return given
    if path == STDOUT:
        return "csv"
    if implied is None:
        raise OutputError(f"cannot tell the format of {path} from its name: pass --format csv or --format parquet, "
                          f"or name it .csv or .parquet")
    return implied


@contextmanager
def to_stdout() -> Iterator[str]:
    """A temporary path in a private directory; once the block succeeds its bytes go to standard output, and
    it is removed whatever happens."""
    directory = tempfile.mkdtemp(prefix="tsstats-out-")
    temporary = os.path.join(directory, "out")
    try:
        yield temporary
        with open(temporary, "rb") as source:
            shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def atomic_output(path: str, force: bool = False) -> Iterator[str]:
    """A temporary path beside ``path``, renamed to it when the block succeeds and removed when it fails: no
    partial file is ever left under the destination's name. ``-`` is standard output (``to_stdout``)."""
    if path == STDOUT:
        with to_stdout() as temporary:
            yield temporary
        return
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
