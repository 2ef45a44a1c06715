"""Estimators: hand-computed params and MACs for every op, agreement with the built models and
torch's FLOP counter, peak activation memory by hand, int8 layout, host latency, registries."""

from __future__ import annotations

import subprocess
import sys
import warnings

import optuna
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.build import build
from explorer.evaluate import (
    DEFAULT_ESTIMATORS,
    MACS,
    MEMORY,
    PARAMS,
    EstimateContext,
    Estimator,
    Macs,
    MissingFormula,
    ParamCount,
    PipelineCost,
    estimate_all,
    register_memory,
)
from explorer.evaluate.latency import LatencyEstimator
from explorer.evaluate.macs import ACTIVATION_OPS, MacsEstimator
from explorer.evaluate.macs import count as count_macs
from explorer.evaluate.memory import ACTIVATION_CODE_BYTES, MemoryEstimator
from explorer.evaluate.params import count as count_params
from explorer.ops import DEFAULT_REGISTRY, Tensor
from explorer.ops.builtin import ACTIVATION_NAMES
from explorer.space import load_space, sample
from explorer.space.architecture import Architecture, Layer

from .conftest import CORPUS, SPACES

V, C = Tensor("vector", (12,)), Tensor("channels", (3, 20))
S, IMG = Tensor("steps", (20, 3)), Tensor("image", (2, 9, 10))


def single(op: str, x: Tensor, params: dict) -> Architecture:
    """A one-layer architecture, its params completed and its output inferred as sampling does."""
    builder = DEFAULT_REGISTRY[op]
    full = builder.with_defaults(params)
    y = builder.infer(x, full)
    return Architecture(x, y, (Layer(op, full, op, x, y, adapter=builder.adapter),), "test")


# op, input, params, (weights, vectors, rows) as in ParamCount, (dense, elementwise) MACs as in Macs.
HAND = [
    # linear 12 -> 5: W 5x12, b 5; 12*5 MACs, relu 1 per output
    ("linear", V, {"width": 5, "activation": "relu"}, (12 * 5, 5, 5), (12 * 5, 5 * 1)),
    # conv1d 3 -> 4, k3 on L=20: L_out = 20 - 3 + 1 = 18; W 4x3x3
    ("conv1d", C, {"out_channels": 4, "kernel_size": 3}, (4 * 3 * 3, 4, 4), (4 * 18 * 3 * 3, 0)),
    # stride 2, padding 1: L_out = (20 + 2 - 3) // 2 + 1 = 10; relu6 2 per output
    ("conv1d", C, {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "activation": "relu6"},
     (36, 4, 4), (4 * 10 * 3 * 3, 4 * 10 * 2)),
    # conv2d 2 -> 4, 3x3 on 9x10: out 7x8; W 4x2x3x3
    ("conv2d", IMG, {"out_channels": 4, "kernel_size": 3}, (4 * 2 * 9, 4, 4), (4 * 7 * 8 * 2 * 9, 0)),
    # padding same keeps 9x10; gelu 5 per output
    ("conv2d", IMG, {"out_channels": 4, "kernel_size": 3, "padding": "same", "activation": "gelu"},
     (72, 4, 4), (4 * 9 * 10 * 2 * 9, 4 * 90 * 5)),
    # depthwise 3x(1x3) + bias 3, pointwise 4x3 + bias 4; L_out 18: dw 3*18*3, pw 4*18*3
    ("dwsep_conv1d", C, {"out_channels": 4, "kernel_size": 3}, (3 * 3 + 4 * 3, 3 + 4, 3 + 4),
     (3 * 18 * 3 + 4 * 18 * 3, 0)),
    # depthwise 2x(3x3), pointwise 4x2, same: 90 positions; sigmoid 3 per output
    ("dwsep_conv2d", IMG, {"out_channels": 4, "kernel_size": 3, "padding": "same", "activation": "sigmoid"},
     (2 * 9 + 4 * 2, 2 + 4, 2 + 4), (2 * 90 * 9 + 4 * 90 * 2, 4 * 90 * 3)),
    # stride 2: out (9 - 3) // 2 + 1 = 4 by (10 - 3) // 2 + 1 = 4 -> 16 positions
    ("dwsep_conv2d", IMG, {"out_channels": 4, "kernel_size": 3, "stride": 2}, (26, 6, 6), (2 * 16 * 9 + 4 * 16 * 2, 0)),
    # k3 s2 on 20: 9 outputs per channel, 3 compares each
    ("maxpool", C, {"kernel_size": 3, "stride": 2}, (0, 0, 0), (0, 3 * 9 * 3)),
    # default k2 s2 on 9x10: 4x5 outputs, 2x2 window each
    ("maxpool", IMG, {}, (0, 0, 0), (0, 2 * 4 * 5 * 4)),
    ("avgpool", C, {}, (0, 0, 0), (0, 3 * 10 * 2)),
    # k3 on 9x10: 3x3 outputs, 9 adds-or-scale each
    ("avgpool", IMG, {"kernel_size": 3}, (0, 0, 0), (0, 2 * 3 * 3 * 9)),
    # one op per input element
    ("global_avgpool", C, {}, (0, 0, 0), (0, 3 * 20)),
    ("global_avgpool", IMG, {}, (0, 0, 0), (0, 2 * 9 * 10)),
    ("global_avgpool", S, {}, (0, 0, 0), (0, 20 * 3)),
    # gamma and beta per channel (running stats are buffers); 1 multiply-add per element
    ("batchnorm", V, {}, (0, 2 * 12, 0), (0, 12)),
    ("batchnorm", C, {}, (0, 2 * 3, 0), (0, 60)),
    ("batchnorm", S, {}, (0, 2 * 3, 0), (0, 60)),
    ("batchnorm", IMG, {}, (0, 2 * 2, 0), (0, 180)),
    # gamma and beta over the normalised shape; 5 per element
    ("layernorm", V, {}, (0, 2 * 12, 0), (0, 5 * 12)),
    ("layernorm", C, {}, (0, 2 * 3 * 20, 0), (0, 5 * 60)),
    ("layernorm", S, {}, (0, 2 * 3, 0), (0, 5 * 60)),
    ("layernorm", IMG, {}, (0, 2 * 180, 0), (0, 5 * 180)),
    ("dropout", V, {"p": 0.2}, (0, 0, 0), (0, 0)),
    ("identity", C, {}, (0, 0, 0), (0, 0)),
    ("flatten", IMG, {}, (0, 0, 0), (0, 0)),
    # 60 elements x (relu 1, relu6 2, sigmoid 3, tanh 1, gelu 5, hardswish 5, identity 0)
    *[("activation", C, {"op": fn}, (0, 0, 0), (0, 60 * cost))
      for fn, cost in {"relu": 1, "relu6": 2, "sigmoid": 3, "tanh": 1, "gelu": 5, "hardswish": 5,
                       "identity": 0}.items()],
    # LSTM I=3, H=6: W_ih 24x3, W_hh 24x6, two biases 24; 20 steps x 24 x (3 + 6) MACs;
    # cell per unit and step 3 sigmoids x 3 + tanh 1 + 2 + tanh 1 + 1 = 14
    ("lstm", S, {"hidden_size": 6}, (24 * 9, 2 * 24, 2 * 24), (20 * 24 * 9, 20 * 6 * 14)),
    # 2 layers x 2 directions: layer 0 input 3, layer 1 input 2 * 6 = 12
    ("lstm", S, {"hidden_size": 6, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
     (2 * 24 * 9 + 2 * 24 * 18, 4 * 48, 4 * 48), (2 * 20 * 24 * 9 + 2 * 20 * 24 * 18, 4 * 20 * 6 * 14)),
    # GRU: 3 gates of 6; cell per unit and step 2 sigmoids x 3 + tanh 1 + 1 + 2 = 10
    ("gru", S, {"hidden_size": 6}, (18 * 9, 2 * 18, 2 * 18), (20 * 18 * 9, 20 * 6 * 10)),
    ("gru", S, {"hidden_size": 4, "num_layers": 2},
     (12 * (3 + 4) + 12 * (4 + 4), 4 * 12, 4 * 12), (20 * 12 * 7 + 20 * 12 * 8, 2 * 20 * 4 * 10)),
    *[(adapter, x, {}, (0, 0, 0), (0, 0)) for adapter, x in [
        ("to_vector", C), ("to_vector", IMG), ("last_step", S), ("to_steps", C), ("to_channels", S),
        ("vector_to_channels", V), ("vector_to_steps", V), ("image_to_channels", IMG), ("channels_to_image", C)]],
    ("reshape", C, {"shape": [6, 10]}, (0, 0, 0), (0, 0)),
]


def test_every_op_has_a_hand_case_and_an_entry_in_every_table():
    assert {case[0] for case in HAND} == set(DEFAULT_REGISTRY.ops)
    for table in (PARAMS, MACS, MEMORY):
        assert set(table.entries) == set(DEFAULT_REGISTRY.ops), table.what
    assert set(ACTIVATION_OPS) == set(ACTIVATION_CODE_BYTES) == set(ACTIVATION_NAMES)


def model_split(model: nn.Module) -> ParamCount:
    """The built model's parameters split as deployment stores them: norm and bias vectors apart
    from weight kernels, whose first dimension is their output rows."""
    weights = vectors = rows = 0
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) or name.startswith("bias"):
                vectors += p.numel()
            else:
                weights, rows = weights + p.numel(), rows + p.shape[0]
    return ParamCount(weights, vectors, rows)


def counted_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs torch's counter sees for one sample.

    The counter has formulas for matmuls and convolutions only (mm, addmm, bmm, convolution,
    attention). It does not cover pooling, mean, batch/layer norm, activations, dropout or the
    layout adapters (no formula: they count 0, so for them this checks our dense part is 0 too).
    On CPU an LSTM dispatches to the fused oneDNN kernel ``aten.mkldnn_rnn_layer``, which the
    counter cannot see; with oneDNN disabled ATen runs its composite LSTM (one addmm per gate
    matmul), which it counts. GRU runs the composite path either way.
    """
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # disabling oneDNN warns about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False), torch.inference_mode(), counter:
            model.eval()(torch.randn(1, *x.shape))
    return counter.get_total_flops()


def check_against_model(arch: Architecture, flops: bool = True) -> None:
    model = build(arch)
    n = count_params(arch)
    assert n.total == sum(p.numel() for p in model.parameters())
    assert n == model_split(model)
    if flops:
        assert counted_flops(model, arch.input) == 2 * count_macs(arch).dense


@pytest.mark.parametrize("op,x,params,split,macs", HAND, ids=[f"{c[0]}-{c[1].kind}-{i}" for i, c in enumerate(HAND)])
def test_hand_computed_params_and_macs_match_the_model_and_the_flop_counter(op, x, params, split, macs):
    arch = single(op, x, params)
    assert count_params(arch) == ParamCount(*split)
    assert count_macs(arch) == Macs(*macs)
    result = estimate_all(EstimateContext(arch), ["params", "macs"])
    assert result["params"] == {"params_trainable": sum(split[:2]), "params_total": sum(split[:2])}
    assert result["macs"]["macs"] == sum(macs) and result["macs"]["flops"] == 2 * sum(macs)
    check_against_model(arch)


@pytest.fixture(scope="module")
def sampled() -> list[Architecture]:
    """200 architectures drawn round-robin from Listing 3 and every space of the good corpus."""
    spaces = [load_space(SPACES / "listing3.yaml"), *(load_space(p) for p in sorted((CORPUS / "good").glob("*.yaml")))]
    studies = [optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=i)) for i in range(len(spaces))]
    archs: list[Architecture] = []
    while len(archs) < 200:
        for space, study in zip(spaces, studies):
            candidate = sample(space, study.ask())
            if candidate.status == "ok" and len(archs) < 200:
                archs.append(candidate.architecture)
    return archs


def test_sampled_models_match_their_built_parameters_and_flop_counts(sampled):
    ops = {layer.op for arch in sampled for layer in arch.layers}
    assert {"conv1d", "dwsep_conv1d", "conv2d", "dwsep_conv2d", "lstm", "gru", "linear", "batchnorm", "layernorm",
            "maxpool", "avgpool", "to_steps", "last_step"} <= ops
    for i, arch in enumerate(sampled):
        check_against_model(arch, flops=i % 2 == 0)  # the counter is slow; every other model still covers every space


def test_static_estimators_run_on_every_sampled_model(sampled):
    for arch in sampled:
        memory = estimate_all(EstimateContext(arch), ["memory"])["memory"]
        assert memory["activations_f32"] == 4 * memory["activations_int8"] > 0
        assert memory["flash_f32"] > memory["weights_f32"] >= 0


SMALL = """\
input: [2, 16]
output: 3
sequence:
  - {block: conv, op_candidates: conv1d, conv1d: {out_channels: 4, kernel_size: 3}}
  - {block: act, op_candidates: activation, activation: {op: relu}}
  - {block: head, op_candidates: linear}
"""


def test_peak_activation_memory_weights_and_flash_by_hand(write_space):
    arch = sample(load_space(write_space(SMALL)), optuna.create_study().ask()).architecture
    assert [layer.op for layer in arch.layers] == ["conv1d", "activation", "to_vector", "linear"]
    memory = estimate_all(EstimateContext(arch, pipeline=PipelineCost(buffer_bytes=1000)), ["memory"])["memory"]
    # live elements per layer: conv1d in 2*16 + out 4*14 = 88; relu in place 56; to_vector (a view)
    # 56; linear in 56 + out 3 = 59. Peak 88 (relu out of place would need 112).
    assert memory["activations_f32"] == 4 * 88 and memory["activations_int8"] == 88
    assert memory["ram_f32"] == 4 * 88 + 1000 and memory["ram_int8"] == 88 + 1000
    # conv W 4*2*3 = 24, b 4; linear W 56*3 = 168, b 3: 199 parameters
    assert memory["weights_f32"] == 4 * 199
    # int8: 1 byte per weight, 4 per int32 bias, 4 per float32 scale of each of the 4 + 3 rows
    assert memory["weights_int8"] == (24 + 168) + 4 * 7 + 4 * 7
    # code: conv1d 4000 + activation 0 + relu 200 + to_vector 200 + linear 2000 (identity 0)
    assert memory["flash_f32"] == 4 * 199 + 6400 and memory["flash_int8"] == 248 + 6400


def test_int8_is_a_quarter_of_float32_activations_and_nearly_of_large_weights():
    arch = single("linear", Tensor("vector", (256,)), {"width": 128})
    memory = estimate_all(EstimateContext(arch), ["memory"])["memory"]
    assert memory["activations_f32"] == 4 * memory["activations_int8"] == 4 * (256 + 128)
    # f32 4 * (256*128 + 128) = 131584; int8 32768 + 4*128 bias + 4*128 scales = 33792
    assert (memory["weights_f32"], memory["weights_int8"]) == (131584, 33792)
    assert 3.8 < memory["weights_f32"] / memory["weights_int8"] < 4


def test_recurrent_scratch_counts_state_gates_and_the_sequence_between_layers():
    arch = single("lstm", S, {"hidden_size": 6, "num_layers": 2, "bidirectional": True})
    memory = estimate_all(EstimateContext(arch), ["memory"])["memory"]
    # in 20*3 + out 20*12 + 2 directions x (h, c, 4 gates) x 6 + between layers 20*12
    assert memory["activations_int8"] == 60 + 240 + 2 * 6 * 6 + 240


def test_pipeline_ops_are_added_to_macs_and_flops():
    arch = single("linear", V, {"width": 5})
    result = estimate_all(EstimateContext(arch, pipeline=PipelineCost(ops_per_sample=100.5)), ["macs"])["macs"]
    assert result == {"macs": 60 + 100.5, "flops": 2 * (60 + 100.5), "macs_dense": 60, "macs_pipeline": 100.5}


def test_latency_is_measured_single_threaded_and_restores_threads_and_mode():
    arch = single("conv1d", C, {"out_channels": 8, "kernel_size": 3, "activation": "relu"})
    model = build(arch).train()
    threads_seen = []
    model.register_forward_hook(lambda *_: threads_seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        result = LatencyEstimator(warmup=2, repeats=10).estimate(EstimateContext(arch, model=model))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert threads_seen == [1] * 12 and model.training
    assert 0 < result["latency_median"] <= result["latency_p90"]


def test_latency_restores_the_thread_count_when_the_model_fails():
    arch = single("linear", V, {"width": 5})
    model = build(arch)
    model.register_forward_hook(lambda *_: 1 / 0)
    before = torch.get_num_threads()
    with pytest.raises(ZeroDivisionError):
        LatencyEstimator(warmup=1, repeats=1).estimate(EstimateContext(arch, model=model))
    assert torch.get_num_threads() == before


def test_an_op_without_a_formula_is_named_and_a_registered_formula_is_used():
    x = Tensor("vector", (7,))
    arch = Architecture(x, x, (Layer("scale", {"factor": 2.0}, "body/scale", x, x),), "test")
    for name, decorator in [("params", "@register_params"), ("macs", "@register_macs"),
                            ("memory", "register_memory")]:
        with pytest.raises(MissingFormula, match=rf"op 'scale' \(layer 'body/scale'\).*{decorator}\('scale'\)"):
            estimate_all(EstimateContext(arch), [name])
    macs, params, memory = MACS.copy(), PARAMS.copy(), MEMORY.copy()
    macs.register("scale")(lambda layer: Macs(elementwise=layer.output.numel))
    params.register("scale")(lambda layer: ParamCount())
    register_memory("scale", code_bytes=300, in_place=True, table=memory)
    assert MacsEstimator(macs).estimate(EstimateContext(arch))["macs"] == 7
    result = MemoryEstimator(memory, params).estimate(EstimateContext(arch))
    assert result["activations_int8"] == 7 and result["flash_int8"] == 300
    assert "scale" not in MACS and "scale" not in PARAMS and "scale" not in MEMORY


def test_estimate_all_runs_cheapest_first_and_custom_estimators_register():
    registry = DEFAULT_ESTIMATORS.copy()

    @registry.register("accuracy")
    class Accuracy(Estimator):
        unit = "fraction"
        direction = "maximize"
        cost = "training"

        def estimate(self, context):
            return {"accuracy": 0.5}

    arch = single("linear", V, {"width": 5})
    result = estimate_all(EstimateContext(arch), ["accuracy", "latency", "memory", "params"], registry)
    assert list(result) == ["memory", "params", "latency", "accuracy"]
    assert result["accuracy"] == {"accuracy": 0.5} and "accuracy" not in DEFAULT_ESTIMATORS
    assert list(DEFAULT_ESTIMATORS.estimators) == ["params", "macs", "memory", "latency", "predicted_latency",
                                                  "tflm_arena"]
    with pytest.raises(KeyError, match="unknown estimator 'energy'"):
        estimate_all(EstimateContext(arch), ["energy"])
    with pytest.raises(ValueError, match="cost must be one of"):
        registry.register("bad")(type("Bad", (Accuracy,), {"cost": "cheap"}))


def test_static_estimators_need_no_torch():
    code = (f"import sys, optuna\nfrom explorer.space import load_space, sample\n"
            f"from explorer.evaluate import EstimateContext, estimate_all\n"
            f"arch = sample(load_space({str(SPACES / 'listing3.yaml')!r}), optuna.create_study().ask()).architecture\n"
            f"estimate_all(EstimateContext(arch), ['params', 'macs', 'memory'])\n"
            f"assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
