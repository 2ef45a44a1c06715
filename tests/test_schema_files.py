"""The JSON Schemas the generated repo commits for editors are exactly what the engine generates,
and the baked experiment spec satisfies its schema."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from bakery import PROJECT_TEMPLATE

SCHEMAS = {"search-space.schema.json": [], "params.schema.json": ["--spec"]}


@pytest.mark.parametrize("name,flags", SCHEMAS.items())
def test_committed_schema_is_generated(name, flags, tmp_path):
    result = subprocess.run([sys.executable, "-m", "explorer.cli", "schema", *flags], capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    committed = (PROJECT_TEMPLATE / "schema" / name).read_text()
    assert json.loads(committed) == json.loads(result.stdout), \
        f"regenerate: explorer schema {' '.join(flags)} > '{{{{cookiecutter.project}}}}/schema/{name}'"


def test_baked_spec_and_spaces_satisfy_the_schemas(baked):
    repo = baked("default")
    spec_schema = json.loads((repo / "schema" / "params.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((repo / "params.yaml").read_text()), spec_schema)
    space_schema = json.loads((repo / "schema" / "search-space.schema.json").read_text())
    for space in sorted((repo / "search_spaces").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(space.read_text()), space_schema)
