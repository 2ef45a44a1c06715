"""Validation rules beyond the corpus: legacy spellings, warnings, limits, located output."""

from __future__ import annotations

import time

from explorer.space import check_file, load_space, space_size
from explorer.space.source import MAX_BYTES

from .conftest import SPACES

LEGACY = """\
input: [6, 100]
output: 4
sequence:
  - block: "features"
    op_candidates: ["conv1d", "batch_norm"]
    type_repeat:
      repeat_type: "repeat_ops"
      depth: {start: 1, end: 3, step: 1}
    conv1d:
      kernel_size: 3
      out_channels: 8
  - block: "rnn"
    op_candidates: "lstm"
    lstm:
      hidden_size: 8
      num_lstm_layers: [1, 2]
  - block: "again"
    type_repeat:
      type: repeat_block
      reference_block: features
  - block: "head"
    op_candidates: linear
"""


def test_listing3_exactly_as_printed_validates_with_one_warning():
    space, diagnostics = check_file(SPACES / "listing3.yaml")
    assert space is not None
    assert [(d.severity, d.line) for d in diagnostics] == [("warning", 12)]
    assert "width" in diagnostics[0].message
    # 6 depths of (conv1d 2x2) x (maxpool | identity): sum 8^d; the head's width is set from output.
    assert space_size(space).discrete == sum(8**d for d in range(1, 7))


def test_legacy_spellings_load_with_one_warning_each(write_space):
    space, diagnostics = check_file(write_space(LEGACY))
    assert space is not None, diagnostics
    warnings = sorted((d.line, d.message) for d in diagnostics)
    assert [line for line, _ in warnings] == [5, 7, 8, 16]
    assert all(d.severity == "warning" and d.hint.startswith("write") for d in diagnostics)
    features = space.sequence[0]
    assert features.candidates == ("conv1d", "batchnorm") and features.repeat == "repeat_op"
    assert space.sequence[1].params["lstm"]["num_layers"].options == (1, 2)
    assert space.sequence[2].ref == "features"


def test_all_errors_of_a_file_are_reported(write_space):
    text = """\
input: [6, 100]
output: 0
sequnce: []
"""
    space, diagnostics = check_file(write_space(text))
    lines = sorted(d.line for d in diagnostics)
    assert space is None and lines == [1, 2, 3]
    assert any("did you mean 'sequence'" in (d.hint or "") for d in diagnostics)


def test_params_for_op_that_is_not_a_candidate_warn(write_space):
    text = """\
input: 8
output: 2
sequence:
  - block: head
    op_candidates: linear
    conv1d: {kernel_size: 3}
"""
    space, diagnostics = check_file(write_space(text))
    assert space is not None
    assert [(d.severity, d.line) for d in diagnostics] == [("warning", 6)]


def test_size_parameter_needed_when_block_is_not_only_the_last_layer(write_space):
    text = """\
input: 8
output: 2
sequence:
  - block: head
    op_candidates: linear
    type_repeat: {type: vary_all, depth: [1, 2]}
"""
    space, diagnostics = check_file(write_space(text))
    assert space is None and "width" in diagnostics[0].message


def test_oversized_file_is_rejected_fast(write_space):
    path = write_space("# " + "x" * MAX_BYTES)
    start = time.perf_counter()
    space, diagnostics = check_file(path)
    assert space is None and "larger than" in diagnostics[0].message
    assert time.perf_counter() - start < 1


def test_missing_file_is_one_diagnostic(tmp_path):
    space, diagnostics = check_file(tmp_path / "nope.yaml")
    assert space is None and "cannot read" in diagnostics[0].message


def test_load_space_raises_user_error_with_all_errors(write_space):
    import pytest

    from explorer.errors import UserError

    with pytest.raises(UserError) as info:
        load_space(write_space("input: x\noutput: y\nsequence: []\n"))
    assert len(info.value.diagnostics) == 3


def test_huge_sizes_print_without_float_or_str_limits():
    from explorer.space import Size

    assert str(Size(2**20000, False)) == "3.98e+6020 architectures"
    assert str(Size(10**15 - 1, True)) == "continuous (999,999,999,999,999 discrete combinations)"
    assert str(Size(10**15, False)) == "1.00e+15 architectures"
