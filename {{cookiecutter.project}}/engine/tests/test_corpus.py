"""Every bad file reports exactly its expected errors (line + quoted offender); good files are clean."""

from __future__ import annotations

import re

import pytest

from explorer.space import check_file

from .conftest import CORPUS

BAD = sorted((CORPUS / "bad").glob("*.yaml"))
GOOD = sorted((CORPUS / "good").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(.*)$", re.M)


def test_corpus_is_large_enough():
    assert len(BAD) >= 40 and len(GOOD) >= 6


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_file_reports_expected_errors(path):
    expected = [(int(line), frag.strip().lower()) for line, frag in EXPECT.findall(path.read_text())]
    assert expected, "corpus file without '# expect:' line"
    space, diagnostics = check_file(path)
    errors = [d for d in diagnostics if d.severity == "error"]
    assert space is None
    for line, fragment in expected:
        assert any(d.line == line and fragment in str(d).lower() for d in errors), (line, fragment, errors)
    for d in errors:
        assert any(d.line == line and frag in str(d).lower() for line, frag in expected), f"unexpected: {d}"
        assert d.file == str(path) and d.col >= 1


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_file_is_clean(path):
    space, diagnostics = check_file(path)
    assert space is not None, diagnostics
    assert diagnostics == []
