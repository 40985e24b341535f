"""Load the JSON Schema files of protocol/schema/ (CPython test helper)."""

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "protocol" / "schema"


@cache
def schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())


@cache
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(schema(kind))


def examples(kind: str) -> list[Path]:
    return sorted((SCHEMA_DIR / "examples" / kind).glob("*.json"))
