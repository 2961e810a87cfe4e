"""V8's value serialization, for the values a DO's KV API stores in ``_cf_KV``.

workerd stores ``ctx.storage.put(key, value)`` values V8-serialized (``put('k', 1)`` stores
``FF0F4902``). Covered: numbers, strings, booleans, null, undefined, byte arrays, and plain
objects and arrays of them (Python dicts with string keys, lists and tuples), as
``JSON.parse`` would build them in the Worker: integer-index keys first and ascending, dense
arrays, a list of numbers that are not all small integers stored as doubles, an object met
twice stored once and referenced. ``tests/test_v8.py`` compares the bytes with V8's own (node's
``v8.serialize``). Anything else raises ``TypeError``.

workerd's V8 is built with pointer compression: its small integers (Smis) have 31 bits, so an
integer from 2**30 to 2**31 - 1 (or from -2**31 to -2**30 - 1) is stored as a double, where node's
V8 (32-bit Smis) writes an integer. Python ``bytes`` stand for a ``Uint8Array``: its buffer, then
the view. Both were recorded from workerd's ``_cf_KV`` (``tests/test_v8.py``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

__all__ = ["deserialize", "serialize"]

_VERSION = b"\xff\x0f"
#: a small integer is a Smi (31 bits in workerd), written as a zigzag varint ("I"); any other
#: number is a double
_SMI_MIN, _SMI_MAX = -(2**30), 2**30 - 1
#: the largest array index: a key at most this is an element, ordered before string keys
_MAX_INDEX = 2**32 - 2


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


def _is_smi(value: object) -> bool:
    """A JS number V8 keeps as a small integer: 5.0 is 5 in JS (but -0 is a double)."""
    if isinstance(value, float):
        if not value.is_integer() or (value == 0 and math.copysign(1.0, value) < 0):
            return False
        return _SMI_MIN <= value <= _SMI_MAX
    return isinstance(value, int) and not isinstance(value, bool) and _SMI_MIN <= value <= _SMI_MAX


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _index(key: str) -> int | None:
    """``key`` as an array index (canonical decimal, at most 2**32 - 2), or None."""
    if not key.isdigit() or not key.isascii() or (len(key) > 1 and key[0] == "0"):
        return None
    n = int(key)
    return n if n <= _MAX_INDEX else None


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray(_VERSION)
        #: id() of each object or array written -> its serialization id (for "^" references);
        #: all of them are reachable from the value written, so no id() is reused meanwhile
        self.ids: dict[int, int] = {}

    def number(self, value: float) -> None:
        if _is_smi(value):
            n = int(value)
            self.buf += b"I" + _varint(((n << 1) ^ (n >> 31)) & 0xFFFFFFFF)
        else:
            self.buf += b"N" + struct.pack("<d", float(value))

    def string(self, value: str) -> None:
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raw = value.encode("utf-16-le", "surrogatepass")
            size = _varint(len(raw))
            if (len(self.buf) + 1 + len(size)) & 1:
                self.buf += b"\x00"  # V8 keeps two-byte strings 2-byte aligned
            self.buf += b"c" + size + raw
        else:
            self.buf += b'"' + _varint(len(raw)) + raw

    def value(self, value: object) -> None:
        if value is None:
            self.buf += b"0"
        elif value is True:
            self.buf += b"T"
        elif value is False:
            self.buf += b"F"
        elif _is_number(value):
            self.number(value)  # type: ignore[arg-type]
        elif isinstance(value, str):
            self.string(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            # a Uint8Array: its ArrayBuffer, then the view ("V", "B" = Uint8Array, offset,
            # length, flags)
            self.buf += b"B" + _varint(len(raw)) + raw + b"VB" + _varint(0) + _varint(len(raw))
            self.buf += _varint(0)
        elif isinstance(value, Mapping | list | tuple):
            seen = self.ids.get(id(value))
            if seen is not None:
                self.buf += b"^" + _varint(seen)
                return
            self.ids[id(value)] = len(self.ids)
            if isinstance(value, Mapping):
                self.mapping(value)
            else:
                self.sequence(value)
        else:
            raise TypeError(f"cannot V8-serialize a {type(value).__name__}")

    def mapping(self, value: Mapping[object, object]) -> None:
        indexed: list[tuple[int, object]] = []
        named: list[tuple[str, object]] = []
        for key, item in value.items():
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)  # a JS object's keys are strings, as JSON.stringify writes them
            if not isinstance(key, str):
                raise TypeError(f"cannot V8-serialize an object key of type {type(key).__name__}")
            index = _index(key)
            if index is None:
                named.append((key, item))
            else:
                indexed.append((index, item))
        indexed.sort(key=lambda pair: pair[0])
        self.buf += b"o"
        for index, item in indexed:
            self.number(index)
            self.value(item)
        for key, item in named:
            self.string(key)
            self.value(item)
        self.buf += b"{" + _varint(len(indexed) + len(named))

    def sequence(self, value: list[object] | tuple[object, ...]) -> None:
        self.buf += b"A" + _varint(len(value))
        if value and all(_is_number(v) for v in value) and not all(_is_smi(v) for v in value):
            # JSON.parse stores such an array as doubles: every element is written as one
            for item in value:
                self.buf += b"N" + struct.pack("<d", float(item))  # type: ignore[arg-type]
        else:
            for item in value:
                self.value(item)
        self.buf += b"$" + _varint(0) + _varint(len(value))


def serialize(value: object) -> bytes:
    """The bytes V8's ValueSerializer writes for ``value``."""
    writer = _Writer()
    writer.value(value)
    return bytes(writer.buf)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 2
        self.objects: list[object] = []

    def varint(self) -> int:
        n, shift = 0, 0
        while self.pos < len(self.data):
            b = self.data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
        raise ValueError("truncated varint")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated V8 value")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def tag(self) -> bytes:
        while True:
            t = self.take(1)
            if t != b"\x00":  # padding
                return t

    def value(self) -> object:
        t = self.tag()
        if t in (b"0", b"_"):
            return None
        if t == b"T":
            return True
        if t == b"F":
            return False
        if t == b"I":
            z = self.varint()
            return (z >> 1) ^ -(z & 1)
        if t == b"N":
            d = struct.unpack("<d", self.take(8))[0]
            # a whole number as an int, as JS shows it (-0 and beyond 2**53 stay floats)
            negative_zero = d == 0 and math.copysign(1.0, d) < 0
            return int(d) if d.is_integer() and abs(d) <= 2**53 and not negative_zero else d
        if t == b'"':
            return self.take(self.varint()).decode("latin-1")
        if t == b"c":
            return self.take(self.varint()).decode("utf-16-le", "surrogatepass")
        if t == b"S":
            return self.take(self.varint()).decode("utf-8")
        if t == b"B":
            data = self.take(self.varint())
            if self.pos < len(self.data) and self.data[self.pos : self.pos + 1] == b"V":
                # a typed array's view of the buffer: its bytes (any element type)
                self.pos += 2
                offset, length = self.varint(), self.varint()
                self.varint()  # flags
                return data[offset : offset + length]
            return data
        if t == b"^":
            return self.objects[self.varint()]
        if t == b"o":
            obj: dict[str, object] = {}
            self.objects.append(obj)
            while self.peek() != b"{":
                key = self.key()
                obj[key] = self.value()
            self.tag()
            self.varint()
            return obj
        if t == b"A":
            items: list[object] = []
            self.objects.append(items)
            for _ in range(self.varint()):
                items.append(self.value())
            if self.tag() != b"$":
                raise ValueError("a dense array with properties is not supported")
            self.varint()
            self.varint()
            return items
        raise ValueError(f"unsupported V8 tag {t!r}")

    def peek(self) -> bytes:
        while self.pos < len(self.data) and self.data[self.pos] == 0:
            self.pos += 1
        if self.pos >= len(self.data):
            raise ValueError("truncated V8 value")
        return self.data[self.pos : self.pos + 1]

    def key(self) -> str:
        key = self.value()
        if isinstance(key, bool) or not isinstance(key, int | float | str):
            raise ValueError(f"unsupported V8 object key {key!r}")
        return key if isinstance(key, str) else str(key)


def deserialize(data: bytes) -> object:
    """Inverse of :func:`serialize` for the same subset."""
    if not data.startswith(_VERSION) or len(data) < 3:
        raise ValueError("not a V8-serialized value")
    return _Reader(data).value()
