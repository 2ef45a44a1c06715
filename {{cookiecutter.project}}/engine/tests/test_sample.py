"""Sampling: repeat modes of Table I, composites, parameter names, determinism, Listing 3 end to end."""

from __future__ import annotations

import torch

from explorer.build import build
from explorer.space import check_file, load_space, sample

from .conftest import SPACES

MODES = """\
input: 16
output: 3
sequence:
  - block: a
    op_candidates: [linear, dropout]
    type_repeat: {type: repeat_op, depth: 3}
    linear: {width: [4, 8, 16, 32]}
    dropout: {p: [0.1, 0.2, 0.3]}
  - block: b
    op_candidates: [linear, dropout]
    type_repeat: {type: repeat_params, depth: 3}
    linear: {width: [4, 8, 16, 32]}
    dropout: {p: [0.1, 0.2, 0.3]}
  - block: c
    op_candidates: [linear, activation]
    type_repeat: {type: vary_all, depth: 4}
    linear: {width: [4, 8]}
  - block: d
    type_repeat: {type: repeat_block, ref_block: b}
  - block: head
    op_candidates: linear
"""


def layers_of(arch, block):
    return [layer for layer in arch.layers if layer.path.split("/")[0] == block and not layer.adapter]


def test_repeat_modes_follow_table_one(write_space, trial_factory):
    space = load_space(write_space(MODES))
    study = trial_factory(seed=3)
    seen_vary_ops, seen_op_params = set(), set()
    for _ in range(40):
        trial = study.ask()
        arch = sample(space, trial).architecture
        a, b, c, d = (layers_of(arch, name) for name in "abcd")
        assert len(a) == 3 and len({layer.op for layer in a}) == 1  # repeat_op: op once
        seen_op_params.add(len({str(layer.params) for layer in a}) > 1)  # params per layer
        assert len(b) == 3 and len({str((layer.op, layer.params)) for layer in b}) == 1  # repeat_params
        assert len(c) == 4
        seen_vary_ops.add(len({layer.op for layer in c}) > 1)  # vary_all: ops vary per layer
        assert [(layer.op, layer.params) for layer in d] == [(layer.op, layer.params) for layer in b]  # repeat_block
        assert all(layer.path.startswith("d/") for layer in d)
        assert set(trial.params) <= {"a/op", "a/0/linear/width", "a/1/linear/width", "a/2/linear/width",
                                     "a/0/dropout/p", "a/1/dropout/p", "a/2/dropout/p", "b/op", "b/linear/width",
                                     "b/dropout/p", "c/0/op", "c/1/op", "c/2/op", "c/3/op", "c/0/linear/width",
                                     "c/1/linear/width", "c/2/linear/width", "c/3/linear/width"}
    assert seen_vary_ops == {True, False} and True in seen_op_params


def test_listing3_parameter_names_are_readable_paths(trial_factory):
    space = load_space(SPACES / "listing3.yaml")
    study = trial_factory(seed=0)
    names = set()
    for _ in range(30):
        names |= set(study.ask().params) | set(sample(space, study.ask()).params)
    assert "features/depth" in names
    assert "features/2/pool/op" in names
    assert "features/2/conv/conv1d/kernel_size" in names
    assert not any(n.startswith("head/") for n in names)  # the head's width is set from output


def test_same_seed_gives_same_architecture(trial_factory):
    space = load_space(SPACES / "listing3.yaml")
    runs = []
    for _ in range(2):
        study = trial_factory(seed=42)
        runs.append([sample(space, study.ask()).architecture.dumps() for _ in range(5)])
    assert runs[0] == runs[1]


def test_listing3_samples_300_trials_without_a_crash(trial_factory):
    space = load_space(SPACES / "listing3.yaml")
    study = trial_factory(seed=7)
    statuses = []
    for _ in range(300):
        cand = sample(space, study.ask())
        statuses.append(cand.status)
        if cand.status == "ok":
            arch = cand.architecture
            assert arch.layers[-1].output == arch.output
    assert statuses.count("ok") == 300
    for _ in range(20):  # forward pass on a sample of them
        arch = sample(space, study.ask()).architecture
        assert build(arch).eval()(torch.randn(2, 4, 1250)).shape == (2, 6)


def test_nested_composites_and_infeasible_reason(write_space, trial_factory):
    text = """\
input: [1, 6]
output: 2
sequence:
  - block: stack
    op_candidates: stage
    type_repeat: {type: repeat_op, depth: 3}
  - block: head
    op_candidates: linear
composites:
  unit:
    sequence:
      - {block: conv, op_candidates: conv1d, conv1d: {out_channels: 2, kernel_size: [1, 3]}}
  stage:
    sequence:
      - {block: u, op_candidates: unit}
      - {block: p, op_candidates: [maxpool, identity]}
"""
    space, diags = check_file(write_space(text))
    assert space is not None, diags
    study = trial_factory(seed=1)
    results = [sample(space, study.ask()) for _ in range(60)]
    assert {r.status for r in results} == {"ok", "infeasible"}
    assert all("longer than the input" in r.reason for r in results if r.status == "infeasible")
    ok = next(r for r in results if r.status == "ok")
    assert {"stack/0/u/conv/conv1d/kernel_size", "stack/2/u/conv/conv1d/kernel_size", "stack/1/p/op"} <= set(ok.params)
