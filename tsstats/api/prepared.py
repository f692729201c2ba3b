"""Answers whose constant headers are encoded once, at start-up.

Sanic sanitizes and encodes every header of every answer; with the security headers that was the largest
single cost of the stats route under load (measured with py-spy). A prepared answer carries its constant
headers as bytes and has Sanic handle only those set per request (length, connection, CORS)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sanic.response import HTTPResponse

EncodedHeaders = tuple[tuple[bytes, bytes], ...]
_FORBIDDEN = str.maketrans({"\r": None, "\n": None})


def encode_headers(headers: Mapping[str, str]) -> EncodedHeaders:
    return tuple((name.translate(_FORBIDDEN).lower().encode("ascii"), value.translate(_FORBIDDEN).encode())
                 for name, value in headers.items())


class PreparedResponse(HTTPResponse):
    __slots__ = ("constant",)

    def __init__(self, body: bytes, constant: EncodedHeaders, status: int = 200):
        """``constant``: encoded headers, the content type among them."""
        super().__init__(body, status=status)
        self.constant = constant

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self.constant
        for name, value in self.headers.items():
            yield (self._sanitize_header_value(name).encode("ascii"),
                   self._sanitize_header_value(f"{value}").encode(errors="surrogateescape"))
