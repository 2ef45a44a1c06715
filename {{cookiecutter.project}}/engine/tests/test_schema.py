"""The JSON Schema is generated from the registry and accepts every valid file."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from explorer.ops import DEFAULT_REGISTRY
from explorer.space.schema import json_schema

from .conftest import CORPUS, SPACES


@pytest.fixture(scope="module")
def validator():
    schema = json_schema(DEFAULT_REGISTRY)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", [*sorted((CORPUS / "good").glob("*.yaml")), SPACES / "listing3.yaml"],
                         ids=lambda p: p.stem)
def test_schema_accepts_valid_spaces(validator, path):
    validator.validate(yaml.safe_load(path.read_text()))


def test_schema_covers_every_op_and_parameter():
    schema = json_schema(DEFAULT_REGISTRY)
    block = schema["$defs"]["Block"]["properties"]
    for name, op in DEFAULT_REGISTRY.searchable().items():
        assert name in block
        ref = block[name]["anyOf"][0]["$ref"].split("/")[-1]
        assert set(schema["$defs"][ref]["properties"]) == {p.name for p in op.params}
    assert "to_vector" not in block  # adapters are not part of the language


@pytest.mark.parametrize("name", ["unknown_key_block_level_op_candidate.yaml", "width_zero.yaml",
                                  "type_repeat_unknown_type.yaml"])
def test_schema_rejects_what_the_validator_rejects(validator, name):
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(yaml.safe_load((CORPUS / "bad" / name).read_text()))
