"""Golden examples in protocol/schema/examples/ against the codec.

Every valid example decodes and encodes back to exactly its own bytes (the
examples are written in canonical form); every invalid example is rejected
with the reason it records. Portable: also runs under MicroPython.
"""

import json
import os

from protocol import codec, topics
from protocol.errors import ProtocolError

# Also run by tests/mpy_runner.py under the MicroPython Unix port.
MICROPYTHON = True

EXAMPLES = "protocol/schema/examples"
EXAMPLE_UNIT = "KEN-M01"  # the unit commands are addressed to


# The repository root: this file is <root>/tests/protocol/test_goldens.py.
ROOT = __file__.rsplit("/", 3)[0]


def example_files(kind):
    directory = ROOT + "/" + EXAMPLES + "/" + kind
    return [
        directory + "/" + name for name in sorted(os.listdir(directory)) if name.endswith(".json")
    ]


def read_bytes(path):
    with open(path, "rb") as source:
        return source.read().strip()


def golden_topic(kind, payload):
    return topics.topic(json.loads(payload).get("u", EXAMPLE_UNIT), kind)


def test_every_kind_has_examples():
    for kind in topics.KINDS:
        assert example_files(kind), kind


def test_valid_examples_round_trip_byte_for_byte():
    for kind in topics.KINDS:
        for path in example_files(kind):
            payload = read_bytes(path)
            message = codec.decode(golden_topic(kind, payload), payload)
            assert codec.encode(message) == payload, (path, codec.encode(message))


def test_payloads_as_units_before_1_1_wrote_them_still_decode_to_the_same_message():
    # examples/legacy/<kind>/<name>.json: `v` and `u` present, every default written,
    # 6 decimals; each means what the short form of the same name means.
    legacy_kinds = sorted(os.listdir(ROOT + "/" + EXAMPLES + "/legacy"))
    assert legacy_kinds == sorted(topics.UPLINK_KINDS), legacy_kinds
    for kind in legacy_kinds:
        for path in example_files("legacy/" + kind):
            old = read_bytes(path)
            assert b'"v":1,"u":' in old, path
            message = codec.decode(topics.topic(json.loads(old)["u"], kind), old)
            canonical = read_bytes(path.replace("/legacy/", "/"))
            assert codec.encode(message) == canonical, (path, codec.encode(message))


def test_invalid_examples_fail_with_their_reason():
    paths = example_files("invalid")
    assert len(paths) >= 10
    for path in paths:
        case = json.loads(read_bytes(path))
        payload = json.dumps(case["payload"]).encode()
        try:
            codec.decode(case["topic"], payload)
        except ProtocolError as exc:
            assert exc.reason == case["reason"], (path, exc.reason, str(exc))
        else:
            raise AssertionError("%s was accepted" % path)
