"""Answers whose constant headers are encoded once, at start-up.

Sanic sanitizes and encodes every header of every answer; with the security headers that was the largest
single cost of the stats route under load (measured with py-spy). A prepared answer carries its constant
headers as bytes, and handles the headers Sanic sets per request (content length, connection) without its
generic sanitizing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sanic.compat import Header
from sanic.response import HTTPResponse

_FORBIDDEN = str.maketrans({"\r": None, "\n": None})
_CONNECTION = {"keep-alive": (b"connection", b"keep-alive"), "close": (b"connection", b"close")}


@dataclass(frozen=True)
class PreparedHeaders:
    """Constant headers, encoded; ``names`` in lower case."""

    pairs: tuple[tuple[bytes, bytes], ...]
    names: frozenset[str]


def prepare_headers(headers: Mapping[str, str]) -> PreparedHeaders:
    pairs = tuple((name.translate(_FORBIDDEN).lower().encode("ascii"), value.translate(_FORBIDDEN).encode())
                  for name, value in headers.items())
    return PreparedHeaders(pairs, frozenset(name.lower() for name in headers))


class PreparedResponse(HTTPResponse):
    __slots__ = ("constant",)

    def __init__(self, body: bytes, constant: PreparedHeaders, status: int = 200):
        """``constant``: the prepared headers, the content type among them."""
        # HTTPResponse.__init__ builds two header maps and encodes the body; a prepared body is bytes already
        self.asgi = False
        self.body = body
        self.content_type = None
        self.stream = None
        self.status = status
        self.headers = Header()
        self._cookies = None
        self.constant = constant

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        lines = list(self.constant.pairs)
        for name, value in self.headers.items():
            if name == "content-length" and type(value) is int:
                lines.append((b"content-length", b"%d" % value))
            elif name == "connection" and value in _CONNECTION:
                lines.append(_CONNECTION[value])
            elif name not in self.constant.names:
                lines.append((self._sanitize_header_value(name).encode("ascii"),
                              self._sanitize_header_value(f"{value}").encode(errors="surrogateescape")))
        return iter(lines)
