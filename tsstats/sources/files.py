"""Files of procfs and sysfs kept open and re-read with ``pread`` from offset 0, which these filesystems
answer with fresh contents: that saves an open and a close per file per reading."""

from __future__ import annotations

import os

CHUNK_BYTES = 65536


class OpenFiles:
    """Files under ``root`` by relative path, opened on first read; one owner thread."""

    def __init__(self, root: str):
        self.root = root
        self._fds: dict[str, int] = {}

    def read(self, relative: str) -> str:
        fd = self._fds.get(relative)
        if fd is None:
            fd = self._fds[relative] = os.open(os.path.join(self.root, relative), os.O_RDONLY)
        chunks = []
        offset = 0
        while True:
            try:
                chunk = os.pread(fd, CHUNK_BYTES, offset)
            except OSError:  # a file that went away (an unplugged device): opened again next time
                os.close(self._fds.pop(relative))
                raise
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            if len(chunk) < CHUNK_BYTES:
                break
        return b"".join(chunks).decode("ascii", "replace")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
