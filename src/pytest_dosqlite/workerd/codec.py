"""JSON encoding of JS values exchanged with the workerd harness and stored in recordings.

Why: JSON has no bytes, no ``undefined``, no NaN/Infinity, and cannot tell a JS boolean from
the numbers SQLite sees, yet exactly those values decide DO-SQLite behaviour (``true`` binds as
the text ``'true'``, every number binds as REAL). Both the harness (``worker.mjs``) and the
recordings use the tagged objects below; this module converts them to and from Python.

=================================  ===========================================================
JSON                               meaning (JS value)
=================================  ===========================================================
string / number / null             the same JS value (every number is a JS double)
``{"$blob": "<hex>"}``             ``Uint8Array`` (in results: a BLOB, JS ``ArrayBuffer``)
``{"$arraybuffer": "<hex>"}``      ``ArrayBuffer``
``{"$bool": true}``                JS boolean
``{"$undefined": true}``           ``undefined``
``{"$num": "NaN"}``                ``NaN``; also ``"Infinity"``, ``"-Infinity"``, ``"-0"``
``{"$bigint": "5"}``               ``5n``
``{"$date": 0}``                   ``new Date(0)``
``{"$object": {...}}``             a plain object
``{"$repeat": ["é", 3]}``          ``"ééé"`` (compact long strings; also valid as SQL text)
``{"$zeroblob": 4}``               ``new Uint8Array(4)``
``{"$concat": [t1, t2, ...]}``     the concatenation of encoded strings (SQL text too)
=================================  ===========================================================

Python side: ``bytes``/``bytearray``/``memoryview`` encode as ``$blob``, ``bool`` as ``$bool``,
non-finite floats and ``-0.0`` as ``$num``; the dataclasses below stand for the other JS values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArrayBuffer",
    "BigInt",
    "Date",
    "JsObject",
    "Repeat",
    "Undefined",
    "ZeroBlob",
    "decode_binding",
    "decode_result",
    "decode_text",
    "encode_binding",
    "encode_text",
    "js_binding",
]


@dataclass(frozen=True)
class Undefined:
    """JS ``undefined`` (binds as NULL)."""


@dataclass(frozen=True)
class BigInt:
    """A JS BigInt (``exec`` rejects it: ``Cannot convert a BigInt value to a number``)."""

    value: int


_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Date:
    """``new Date(ms)`` (binds as its ``String()`` text)."""

    ms: float

    def js_string(self) -> str:
        """``String(new Date(ms))`` in workerd (UTC), for any year JS allows."""
        ms = self.ms
        if math.isnan(ms) or abs(ms) > 8.64e15:
            return "Invalid Date"
        ms = math.floor(ms)
        days, in_day = divmod(int(ms), _DAY_MS)
        # the civil date of a day count (proleptic Gregorian, any year; H. Hinnant's method)
        z = days + 719_468
        era = z // 146_097
        doe = z - era * 146_097
        yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (month <= 2)
        seconds = in_day // 1000
        year_text = f"{year:04d}" if year >= 0 else f"{year:05d}"
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return (
            f"{_DAYS[(days + 4) % 7]} {_MONTHS[month - 1]} {day:02d} {year_text} {clock} "
            "GMT+0000 (Coordinated Universal Time)"
        )


@dataclass(frozen=True)
class JsObject:
    """A plain JS object (binds as ``'[object Object]'``)."""

    value: Mapping[str, Any]


@dataclass(frozen=True)
class ArrayBuffer:
    """A JS ``ArrayBuffer`` (binds as a BLOB, like ``Uint8Array``)."""

    data: bytes


@dataclass(frozen=True)
class Repeat:
    """``text * count`` sent compactly (long SQL text or values)."""

    text: str
    count: int

    def __str__(self) -> str:
        return self.text * self.count


@dataclass(frozen=True)
class ZeroBlob:
    """``new Uint8Array(size)``: ``size`` zero bytes sent compactly."""

    size: int


def js_binding(value: Any) -> Any:
    """A stand-in as the Python value the emulator binds the same way (not a :class:`BigInt`:
    no Python value binds as one; ``sql.exec`` refuses it)."""
    if isinstance(value, Undefined):
        return None
    if isinstance(value, ArrayBuffer):
        return bytes(value.data)
    if isinstance(value, ZeroBlob):
        return bytes(value.size)
    if isinstance(value, JsObject):
        return dict(value.value) if isinstance(value.value, Mapping) else {"value": value.value}
    if isinstance(value, Date):
        return value.js_string()
    if isinstance(value, Repeat):
        return str(value)
    return value


def encode_text(text: str | Repeat | Sequence[str | Repeat]) -> Any:
    """Encode SQL text: a string, a :class:`Repeat`, or a list of parts to concatenate."""
    if isinstance(text, str):
        return text
    if isinstance(text, Repeat):
        return {"$repeat": [text.text, text.count]}
    return {"$concat": [encode_text(part) for part in text]}


def decode_text(value: Any) -> str:
    """The string an encoded SQL text (or ``$repeat``/``$concat`` value) stands for."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "$repeat" in value:
            text, count = value["$repeat"]
            return str(text) * int(count)
        if "$concat" in value:
            return "".join(decode_text(part) for part in value["$concat"])
    raise ValueError(f"not an encoded text: {value!r:.80}")


def _encode_number(value: float) -> Any:
    if math.isnan(value):
        return {"$num": "NaN"}
    if math.isinf(value):
        return {"$num": "Infinity" if value > 0 else "-Infinity"}
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return {"$num": "-0"}
    return value


def encode_binding(value: Any) -> Any:
    """Encode one Python value as the JS value ``sql.exec`` should receive.

    Already-encoded tagged dicts (``{"$bigint": "5"}``) pass through unchanged.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return {"$bool": value}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _encode_number(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$blob": bytes(value).hex()}
    if isinstance(value, Undefined):
        return {"$undefined": True}
    if isinstance(value, BigInt):
        return {"$bigint": str(value.value)}
    if isinstance(value, Date):
        return {"$date": value.ms}
    if isinstance(value, JsObject):
        return {"$object": dict(value.value)}
    if isinstance(value, ArrayBuffer):
        return {"$arraybuffer": value.data.hex()}
    if isinstance(value, Repeat):
        return encode_text(value)
    if isinstance(value, ZeroBlob):
        return {"$zeroblob": value.size}
    if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)).startswith("$"):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as a JS value")


_NUMS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


def decode_binding(value: Any) -> Any:
    """The Python value for an encoded binding (the inverse of :func:`encode_binding`)."""
    if value is None or isinstance(value, str | int | float):
        return value
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"not an encoded JS value: {value!r:.80}")
    tag, payload = next(iter(value.items()))
    if tag == "$blob":
        return bytes.fromhex(payload)
    if tag == "$arraybuffer":
        return ArrayBuffer(bytes.fromhex(payload))
    if tag == "$bool":
        return bool(payload)
    if tag == "$undefined":
        return Undefined()
    if tag == "$num":
        return _NUMS[payload]
    if tag == "$bigint":
        return BigInt(int(payload))
    if tag == "$date":
        return Date(payload)
    if tag == "$object":
        return JsObject(payload)
    if tag == "$zeroblob":
        return bytes(int(payload))
    if tag in ("$repeat", "$concat"):
        return decode_text(value)
    raise ValueError(f"unknown JS value tag {tag!r}")


def decode_result(value: Any) -> Any:
    """Decode a result cell (or a row list / row object): ``$blob`` → bytes, ``$num`` → float."""
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if isinstance(value, Mapping):
        if len(value) == 1:
            tag, payload = next(iter(value.items()))
            if tag == "$blob":
                return bytes.fromhex(payload)
            if tag == "$num":
                return _NUMS[payload]
            if tag == "$undefined":
                return None
        return {k: decode_result(v) for k, v in value.items()}
    return value
