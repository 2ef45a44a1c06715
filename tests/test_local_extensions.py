"""The template's Jinja extension: any option text renders as exactly itself, template text stays
Jinja, and `tojson` output reads back as the same value in YAML, TOML and JSON."""

import json
import sys
import tomllib

import yaml
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment

from bakery import TEMPLATE

sys.path.insert(0, str(TEMPLATE))
import local_extensions  # noqa: E402

ENV = Environment(extensions=[local_extensions.OptionsExtension], keep_trailing_newline=True)
# What the option rules accept for a title: printable text on one line.
TITLES = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Cn", "Zl", "Zp")), min_size=1, max_size=200
)


@given(st.text())
def test_option_text_renders_as_itself(text):
    assert ENV.from_string(text).render(cookiecutter={}) == text


def test_template_text_stays_jinja():
    assert ENV.from_string("{{cookiecutter.project}}").render(cookiecutter={"project": "p"}) == "p"


@given(TITLES)
def test_tojson_reads_back_in_yaml_toml_and_json(title):
    literal = ENV.filters["tojson"](title)
    assert yaml.safe_load(f"name: {literal}\n")["name"] == title
    assert tomllib.loads(f"name = {literal}\n")["name"] == title
    assert json.loads(literal) == title
