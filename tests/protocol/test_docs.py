"""docs/protocol.md covers everything the code and schema define."""

import re
from pathlib import Path

import pytest

from protocol import codec, errors, status, topics
from tests.protocol.schemas import schema

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
# Inline `code` spans, outside fenced blocks.
CODE_SPANS = set(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOC, flags=re.S)))


def _all_schema_keys(node: object) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        keys |= set(node.get("properties", {}))
        for value in node.values():
            keys |= _all_schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= _all_schema_keys(value)
    return keys


@pytest.mark.parametrize("kind", topics.KINDS)
def test_every_kind_and_its_fields_are_documented(kind: str) -> None:
    assert f"### `{kind}`" in DOC, kind
    missing = {key for key in _all_schema_keys(schema(kind)) if key not in CODE_SPANS}
    assert not missing, f"{kind}: keys not in docs/protocol.md: {sorted(missing)}"


def test_every_codec_field_is_documented_with_its_attribute_name() -> None:
    tables = [fields for _, fields, _ in codec.UPLINK.values()]
    tables += [fields for _, fields in codec.COMMANDS.values()]
    for fields in tables:
        for field in fields:
            assert f"`{field.key}`" in DOC, field.key
            assert field.attr in DOC, field.attr


def test_commands_statuses_reasons_and_settings_are_documented() -> None:
    for name in codec.COMMANDS:
        assert f"| `{name}` |" in DOC, name
    for code, (name, label, fms) in status.CATALOGUE.items():
        assert f"| {code} | `{name}` | {label} | {fms} |" in DOC, name
    for key in codec.CONFIG_RANGES:
        assert f"| `{key}` |" in DOC, key
    subclasses = [
        error
        for error in vars(errors).values()
        if isinstance(error, type)
        and issubclass(error, errors.ProtocolError)
        and error is not errors.ProtocolError
    ]
    assert len(subclasses) == 8
    for error in subclasses:
        assert f"| `{error.reason}` | {error.__name__} |" in DOC, error.__name__


def test_documented_limits_match_the_code() -> None:
    assert f"{codec.MAX_PAYLOAD_BYTES} bytes per payload" in DOC
    assert f"{codec.MAX_BATCH_PAYLOAD_BYTES} for a `batch`" in DOC
    assert f"array of 1 … {codec.MAX_BATCH_ITEMS} objects" in DOC
