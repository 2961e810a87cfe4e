"""V8 value serialization (the KV API's ``_cf_KV`` values) byte for byte against V8's own.

node's ``v8.serialize`` is V8's ValueSerializer, the one workerd stores ``ctx.storage.put``
values with; each value reaches it through ``JSON.parse``, as a Worker's data usually does.
Skipped where node is absent; the round trips run everywhere. Where workerd's V8 differs from
node's (31-bit small integers; a ``Uint8Array``, which node writes as a host object), the bytes
were read from the ``_cf_KV`` table of a DO in workerd 1.20261117.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from pytest_dosqlite import DurableObjectStorage
from pytest_dosqlite.v8 import deserialize, serialize

VALUES: list[Any] = [
    None,
    True,
    1,
    -1,
    -5.0,
    [3.0, 4],
    2**30 - 1,
    -(2**30),
    2**31,
    1.5,
    -0.0,
    1e300,
    "",
    "ascii",
    "é latin-1",
    "€ two-byte",
    [],
    {},
    [1, 2, 3],
    [1.5, 2],
    [2**31, 1],
    [1, "a", None, True],
    {"a": 1, "2": True, "1": None, "b": [1, {"c": "€"}]},
    {"ab": "€", "x": {"y": {"z": []}}},
    {"4294967294": 1, "4294967295": 2, "01": 3, "10": 4, "9": 5},
    [{"€": "€"}, {"ab": ["€", "é"]}, "€€", [[["deep"]]]],
    {"count": 3, "tags": ["a", "b"], "owner": {"id": 7, "name": "Ada"}, "ratio": 0.25},
]


def _v8_hex(values: list[Any]) -> list[str]:
    script = (
        "const v8 = require('v8');"
        "const values = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(values.map("
        "(s) => v8.serialize(JSON.parse(s)).toString('hex'))));"
    )
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([json.dumps(v) for v in values]),
        capture_output=True,
        text=True,
        check=True,
    )
    hexes: list[str] = json.loads(out.stdout)
    return hexes


#: ``ctx.storage.put(key, value)`` in workerd 1.20261117.1, read back from its ``_cf_KV`` table
WORKERD_BYTES: list[tuple[Any, str]] = [
    (2**30, "ff0f4e000000000000d041"),  # past the 31-bit Smis: a double (node: an integer)
    (2**30 - 1, "ff0f49feffffff07"),
    (-(2**30), "ff0f49ffffffff07"),
    (-(2**30) - 1, "ff0f4e000040000000d0c1"),
    (-(2**31), "ff0f4e000000000000e0c1"),
    ([1, 2**30], "ff0f41024e000000000000f03f4e000000000000d041240002"),
    (b"\x01\x02\x03", "ff0f42030102035642000300"),  # a Uint8Array: the buffer, then the view
]


@pytest.mark.parametrize(("value", "recorded"), WORKERD_BYTES)
def test_serialize_writes_workerds_bytes(value: Any, recorded: str) -> None:
    assert serialize(value).hex() == recorded
    assert deserialize(bytes.fromhex(recorded)) == value


def test_a_typed_array_reads_back_as_its_bytes() -> None:
    assert deserialize(bytes.fromhex("ff0f420201ff5662000200")) == b"\x01\xff"  # Int8Array
    assert deserialize(bytes.fromhex("ff0f42020102")) == b"\x01\x02"  # a bare ArrayBuffer


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_serialize_writes_v8s_bytes() -> None:
    expected = _v8_hex(VALUES)
    for value, want in zip(VALUES, expected, strict=True):
        assert serialize(value).hex() == want, value


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_an_object_met_twice_is_a_reference() -> None:
    shared: dict[str, Any] = {"k": [1]}
    out = subprocess.run(
        [
            "node",
            "-e",
            "const o={k:[1]};"
            "process.stdout.write(require('v8').serialize({a:o,b:[o,o]}).toString('hex'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert serialize({"a": shared, "b": [shared, shared]}).hex() == out.stdout


@pytest.mark.parametrize("value", VALUES, ids=lambda v: json.dumps(v)[:40])
def test_round_trip(value: Any) -> None:
    back = deserialize(serialize(value))
    assert back == value and type(back) in (type(value), int)


def test_put_and_get_an_object() -> None:
    do = DurableObjectStorage()
    do.put("settings", {"theme": "dark", "limits": [1, 2]})
    assert do.get("settings") == {"theme": "dark", "limits": [1, 2]}
    with pytest.raises(TypeError, match="cannot V8-serialize a set"):
        do.put("bad", {1, 2})
    with pytest.raises(TypeError, match="object key of type tuple"):
        do.put("bad", {(1, 2): 3})
    do.close()
