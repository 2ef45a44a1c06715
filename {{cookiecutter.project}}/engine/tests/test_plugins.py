"""User ops named in the experiment spec are registered before a space is read."""

from __future__ import annotations

import subprocess
import sys

PLUGIN = '''
from explorer.ops import LayerBuilder, Param, register_layer


@register_layer("double")
class Double(LayerBuilder):
    params = (Param("times", "int", default=2, ge=1),)

    def infer(self, x, p):
        return x

    def build_layer(self, x, p):
        import torch

        class Mul(torch.nn.Module):
            def forward(self, t):
                return t * p["times"]

        return Mul()
'''

SPACE = "input: 4\\noutput: 2\\nsequence:\\n  - {block: d, op_candidates: double, double: {times: [2, 3]}}\\n" \
        "  - {block: head, op_candidates: linear}\\n"


def explorer(*args, cwd):
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_plugin_ops_from_the_spec_found_upward(tmp_path):
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "myops.py").write_text(PLUGIN)
    (tmp_path / "params.yaml").write_text("plugins:\n  - ops/myops.py\n")
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "s.yaml").write_text(SPACE.encode().decode("unicode_escape"))
    result = explorer("validate", "s.yaml", cwd=tmp_path / "spaces")
    assert result.returncode == 0, result.stderr
    assert "double" in result.stdout
    result = explorer("sample", "s.yaml", "--json", "-n", "2", cwd=tmp_path / "spaces")
    assert result.returncode == 0 and '"op": "double"' in result.stdout
    result = explorer("ops", cwd=tmp_path)
    assert "double" in result.stdout


def test_bad_plugin_is_one_located_line(tmp_path):
    (tmp_path / "params.yaml").write_text("dataset: digits\nplugins:\n  - missing_module\n")
    (tmp_path / "s.yaml").write_text("input: 4\noutput: 2\nsequence:\n  - {block: head, op_candidates: linear}\n")
    result = explorer("validate", "s.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "params.yaml:3:5: error: cannot load plugin 'missing_module'" \
        in result.stderr
