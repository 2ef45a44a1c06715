"""CI's slow tier runs every benchmark in its quick mode: each must finish and print its table.

The goals are reported in the tables, never asserted here: speed targets live in benchmarks/,
not in timed tests (a loaded CI machine would make such a test flaky, not informative).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bakery import TEMPLATE

BENCHMARKS = {
    "dsl.py": [],
    "preprocess.py": ["--quick"],
    "search.py": ["--quick"],
    "latency.py": ["--models", "60", "--holdout", "30"],
    "targets.py": ["--models", "6", "--timing", "1"],
    "boards.py": ["--jobs", "4", "--seconds", "0.3", "--repeats", "1"],
}

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("script,flags", BENCHMARKS.items())
def test_benchmark_prints_its_table(script, flags, tmp_path):
    result = subprocess.run([sys.executable, str(TEMPLATE / "benchmarks" / script), *flags], cwd=tmp_path,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any("goal" in line for line in lines), result.stdout[-2000:]
    assert sum(any(ch.isdigit() for ch in line) for line in lines) >= 3  # figures, not just a header
