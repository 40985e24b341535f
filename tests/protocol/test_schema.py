"""The JSON Schema files agree with the codec's field tables and the goldens."""

import json

import pytest
from jsonschema import Draft202012Validator

from protocol import codec, status, topics
from tests.protocol.schemas import examples, schema, validator

EXAMPLE_UNIT = "KEN-M01"


@pytest.mark.parametrize("kind", topics.KINDS)
def test_schema_is_valid_json_schema(kind: str) -> None:
    Draft202012Validator.check_schema(schema(kind))


@pytest.mark.parametrize("kind", topics.KINDS)
def test_valid_examples_validate_and_decode(kind: str) -> None:
    for path in examples(kind):
        payload = json.loads(path.read_text())
        validator(kind).validate(payload)
        topic = topics.topic(payload.get("u", EXAMPLE_UNIT), kind)
        codec.decode(topic, path.read_bytes().strip())


def test_invalid_examples_fail_the_schema_too() -> None:
    for path in examples("invalid"):
        case = json.loads(path.read_text())
        kind = topics.parse(case["topic"])[1]
        assert not validator(kind).is_valid(case["payload"]), path.name


def _keys(fields: tuple[codec.Field, ...]) -> set[str]:
    return {field.key for field in fields}


def _required(fields: tuple[codec.Field, ...]) -> set[str]:
    return {field.key for field in fields if field.on_wire_required()}


@pytest.mark.parametrize("kind", topics.UPLINK_KINDS)
def test_uplink_schema_has_exactly_the_codec_fields(kind: str) -> None:
    fields = codec.UPLINK[kind][1]
    # `v` and `u` stay allowed (units before 1.1 send them) but are no longer required.
    assert set(schema(kind)["properties"]) == {"v", "u"} | _keys(fields)
    assert set(schema(kind)["required"]) == _required(fields)


@pytest.mark.parametrize("kind", topics.UPLINK_KINDS)
def test_payloads_of_units_before_1_1_validate(kind: str) -> None:
    paths = examples("legacy/" + kind)
    assert paths, kind
    for path in paths:
        payload = json.loads(path.read_text())
        assert {"v", "u"} <= set(payload), path.name
        validator(kind).validate(payload)


def test_defaults_match_the_codec() -> None:
    items = schema("batch")["properties"]["ps"]["items"]["properties"]
    for properties in (schema("pos")["properties"], items):
        for field in codec.POSITION_FIELDS:
            wire = field.default if field.table is None else field.table.get(field.default)
            assert properties[field.key].get("default") == wire, field.key


def test_batch_items_are_position_fields() -> None:
    items = schema("batch")["properties"]["ps"]["items"]
    assert set(items["properties"]) == _keys(codec.POSITION_FIELDS)
    assert set(items["required"]) == _required(codec.POSITION_FIELDS)
    assert schema("batch")["properties"]["ps"]["maxItems"] == codec.MAX_BATCH_ITEMS


def test_cmd_schema_has_every_command_field() -> None:
    cmd = schema("cmd")
    assert set(cmd["properties"]["k"]["enum"]) == set(codec.COMMANDS)
    every = set().union(*(_keys(fields) for _, fields in codec.COMMANDS.values()))
    assert set(cmd["properties"]) == {"v", "k"} | every
    required_by_command = {
        rule["if"]["properties"]["k"]["const"]: set(rule["then"]["required"])
        for rule in cmd["allOf"]
    }
    for name, (_, fields) in codec.COMMANDS.items():
        extra = _required(fields) - _required(codec.COMMAND_ENVELOPE)
        assert required_by_command.get(name, set()) == extra, name
    assert set(cmd["$defs"]["set"]["properties"]) == set(codec.CONFIG_RANGES)
    # Each command's own fields are typed for that command only.
    typed = {
        rule["if"]["properties"]["k"]["const"]: set(rule["then"]["properties"])
        for rule in cmd["allOf"]
    }
    for name, (_, fields) in codec.COMMANDS.items():
        assert typed.get(name, set()) == _keys(fields) - _keys(codec.COMMAND_ENVELOPE), name
    assert set(cmd["$defs"]) == every - _keys(codec.COMMAND_ENVELOPE)


def test_a_command_ignores_another_commands_field_as_the_codec_does() -> None:
    # Found by the mutation property test: the codec ignores `r` on a ping (not its field),
    # so the schema must not type it there.
    payload = b'{"v":1,"k":"ping","c":0,"t":0,"r":null}'
    codec.decode("balise/v1/KEN-M01/cmd", payload)
    validator("cmd").validate(json.loads(payload))
    assert not validator("cmd").is_valid(json.loads(payload.replace(b"ping", b"ack")))


def test_status_codes_match_the_catalogue() -> None:
    assert schema("status")["properties"]["st"]["enum"] == sorted(status.CATALOGUE)


def test_ranges_match_the_codec() -> None:
    for kind in topics.UPLINK_KINDS:
        properties = schema(kind)["properties"]
        for field in codec.UPLINK[kind][1]:
            if field.lo is None or field.key not in properties:
                continue
            prop = properties[field.key]
            assert (prop["minimum"], prop["maximum"]) == (field.lo, field.hi), (kind, field.key)
