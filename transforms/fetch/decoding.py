"""Content-Encoding decoders that never inflate past a limit.

A gzip, deflate or brotli "bomb" is a few kilobytes on the wire and gigabytes decoded. These
decoders hand the decompressor a bounded output size at every step, so at most `limit + 1`
decoded bytes ever exist before the body is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import brotli

SUPPORTED_ENCODINGS = ("gzip", "deflate", "br")
ACCEPT_ENCODING = ", ".join(SUPPORTED_ENCODINGS)


class DecodedTooLarge(Exception):  # noqa: N818  (a condition, not an error of ours)
    """The decoded body would exceed the limit."""


class UnsupportedEncoding(Exception):  # noqa: N818
    """A Content-Encoding we did not ask for and cannot decode."""


class _Zlib:
    def __init__(self, encoding: str) -> None:
        # gzip: header and trailer; deflate: the zlib wrapper, which some servers omit (then raw).
        self._wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._raw_fallback = encoding == "deflate"
        self._decompressor = zlib.decompressobj(self._wbits)
        self._started = False

    def decode(self, data: bytes, limit: int) -> Iterator[bytes]:
        pending = data
        while pending:
            try:
                out = self._decompressor.decompress(pending, limit + 1)
            except zlib.error:
                if self._raw_fallback and not self._started:
                    self._raw_fallback = False
                    self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise
            self._started = True
            yield out
            pending = self._decompressor.unconsumed_tail
            if self._decompressor.eof and self._decompressor.unused_data:
                # A second gzip member (concatenated streams are legal): start again.
                pending = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(self._wbits)
            if not out and pending == data:
                break  # no progress is possible without more input

    def flush(self) -> bytes:
        return self._decompressor.flush()


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes, limit: int) -> Iterator[bytes]:
        yield self._decompressor.process(data, output_buffer_limit=limit + 1)
        while not self._decompressor.can_accept_more_data():
            yield self._decompressor.process(b"", output_buffer_limit=limit + 1)

    def flush(self) -> bytes:
        return b""


class BoundedDecoder:
    """Decode a body with the given Content-Encoding header, refusing more than `limit` bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        names = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        names = [n for n in names if n != "identity"]
        for name in names:
            if name not in SUPPORTED_ENCODINGS:
                raise UnsupportedEncoding(f"unsupported Content-Encoding {name!r}")
        # Encodings are listed in the order they were applied; undo them from the last.
        self._stages = [_Brotli() if n == "br" else _Zlib(n) for n in reversed(names)]

    def decode(self, chunk: bytes) -> bytes:
        """The decoded bytes of one more chunk of the body."""
        return self._counted(self._through([chunk]))

    def flush(self) -> bytes:
        """Whatever the decoders still hold at the end of the body."""
        carry = b""
        for stage in self._stages:
            pieces = list(self._bounded(stage, carry)) if carry else []
            pieces.append(stage.flush())
            carry = b"".join(pieces)
        return self._counted([carry])

    def _through(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        for stage in self._stages:
            chunks = [piece for chunk in chunks for piece in self._bounded(stage, chunk)]
        return chunks

    def _bounded(self, stage: _Zlib | _Brotli, chunk: bytes) -> Iterator[bytes]:
        produced = 0
        for piece in stage.decode(chunk, self.limit - self.size):
            produced += len(piece)
            if self.size + produced > self.limit:
                raise DecodedTooLarge(f"decoded body exceeds {self.limit} bytes")
            yield piece

    def _counted(self, pieces: Iterable[bytes]) -> bytes:
        out = b"".join(pieces)
        self.size += len(out)
        if self.size > self.limit:
            raise DecodedTooLarge(f"decoded body exceeds {self.limit} bytes")
        return out
