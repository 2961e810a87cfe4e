"""V8's value serialization, for the values a DO's KV API stores in ``_cf_KV``.

workerd stores ``ctx.storage.put(key, value)`` values V8-serialized (``put('k', 1)`` stores
``FF0F4902``). Only what a migration test needs is covered: numbers, strings, booleans, null,
undefined and byte arrays; anything else raises ``TypeError``.
"""

from __future__ import annotations

import math
import struct

__all__ = ["deserialize", "serialize"]

_VERSION = b"\xff\x0f"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def serialize(value: object) -> bytes:
    """The bytes V8's ValueSerializer writes for ``value``."""
    if value is None:
        body = b"0"
    elif value is True:
        body = b"T"
    elif value is False:
        body = b"F"
    elif isinstance(value, int) and -(2**31) <= value < 2**31:
        body = b"I" + _varint((value << 1) ^ (value >> 31))  # zigzag int32
    elif isinstance(value, int | float):
        body = b"N" + struct.pack("<d", float(value))
    elif isinstance(value, str):
        try:
            raw = value.encode("latin-1")
            body = b'"' + _varint(len(raw)) + raw
        except UnicodeEncodeError:
            raw = value.encode("utf-16-le")
            body = b"c" + _varint(len(raw)) + raw
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
        body = b"B" + _varint(len(raw)) + raw
    else:
        raise TypeError(f"cannot V8-serialize a {type(value).__name__}")
    return _VERSION + body


def deserialize(data: bytes) -> object:
    """Inverse of :func:`serialize` for the same subset."""
    if not data.startswith(_VERSION) or len(data) < 3:
        raise ValueError("not a V8-serialized value")
    tag, rest = data[2:3], data[3:]

    def varint(buf: bytes) -> tuple[int, bytes]:
        n, shift = 0, 0
        for i, b in enumerate(buf):
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n, buf[i + 1 :]
        raise ValueError("truncated varint")

    if tag == b"0":
        return None
    if tag == b"_":
        return None
    if tag == b"T":
        return True
    if tag == b"F":
        return False
    if tag == b"I":
        z, _ = varint(rest)
        return (z >> 1) ^ -(z & 1)
    if tag == b"N":
        value = struct.unpack("<d", rest[:8])[0]
        return int(value) if value.is_integer() and not math.isinf(value) else value
    if tag in (b'"', b"c", b"B"):
        n, body = varint(rest)
        raw = body[:n]
        if tag == b'"':
            return raw.decode("latin-1")
        if tag == b"c":
            return raw.decode("utf-16-le")
        return raw
    raise ValueError(f"unsupported V8 tag {tag!r}")
