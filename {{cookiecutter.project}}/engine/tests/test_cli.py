"""The explorer command as a user meets it: exit codes, one-line errors, JSON output, start-up cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from explorer.cli import main

from .conftest import CORPUS, SPACES

LINE = re.compile(r"^.+:\d+:\d+: (error|warning): .+$")


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version_and_help(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("explorer ")
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "validate" in out and "sample" in out


def test_validate_ok_prints_a_summary(capsys):
    code, out, err = run(["validate", str(SPACES / "listing3.yaml")], capsys)
    assert code == 0
    assert "ok, 4 blocks" in out and "299,592 architectures" in out
    assert LINE.match(err.strip())  # the head width warning


def test_validate_errors_are_located_lines_and_exit_2(capsys):
    files = [str(CORPUS / "bad" / "several_independent_errors.yaml"), str(CORPUS / "good" / "conv_then_lstm.yaml")]
    code, out, err = run(["validate", *files], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3 and all(LINE.match(x) for x in lines)
    assert "Traceback" not in err and "conv_then_lstm.yaml: ok" in out


def test_validate_github_and_json_formats(capsys):
    bad = str(CORPUS / "bad" / "depth_zero.yaml")
    code, out, _ = run(["validate", "--format", "github", bad], capsys)
    assert code == 2 and re.match(r"^::error file=.+,line=\d+,col=\d+::.*depth", out)
    code, out, _ = run(["validate", "--format", "json", bad], capsys)
    record = json.loads(out)[0]
    assert code == 2 and not record["ok"] and record["diagnostics"][0]["line"] >= 1


def test_usage_errors_are_one_line(capsys):
    for args in (["validate"], ["sample", "x.yaml", "--trials", "0"], ["nope"], ["sample", "--bogus"]):
        code, out, err = run(args, capsys)
        assert code == 2, args
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), (args, err)


def test_sample_json_lines(capsys):
    code, out, _ = run(["sample", str(SPACES / "listing3.yaml"), "--trials", "4", "--seed", "3", "--json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["trial"] for r in rows] == [0, 1, 2, 3]
    for r in rows:
        assert set(r) == {"trial", "status", "reason", "params", "input_shape", "output_shape", "n_params",
                          "architecture"}
        assert r["status"] == "ok" and r["input_shape"] == [4, 1250] and r["output_shape"] == [6]
        assert r["n_params"] > 0 and r["architecture"]["layers"][-1]["last"]


def test_sample_table_and_invalid_space(capsys):
    code, out, _ = run(["sample", str(SPACES / "listing3.yaml"), "-n", "3"], capsys)
    assert code == 0 and "3 ok, 0 infeasible" in out
    code, _, err = run(["sample", str(CORPUS / "bad" / "depth_zero.yaml")], capsys)
    assert code == 2 and LINE.match(err.strip())


def test_validate_does_not_import_torch_or_optuna():
    code = ("import sys; from explorer.cli import main; main(['validate', sys.argv[1]]);"
            "print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(SPACES / "listing3.yaml")], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_exit_code():
    bad = CORPUS / "bad" / "empty_file.yaml"
    exe = [sys.executable, "-m", "explorer.cli", "validate", str(bad)]
    result = subprocess.run(exe, capture_output=True, text=True)
    assert result.returncode == 2 and "empty file" in result.stderr and "Traceback" not in result.stderr
