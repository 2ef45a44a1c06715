"""Ops: shapes inferred without torch match the built modules; adapters; infeasible shapes; registry."""

from __future__ import annotations

import pytest
import torch

from explorer.build import build
from explorer.ops import DEFAULT_REGISTRY, Infeasible, LayerBuilder, Param, Tensor
from explorer.space import check_file, sample
from explorer.space.architecture import Architecture, Layer

INPUTS = {"vector": Tensor("vector", (12,)), "channels": Tensor("channels", (3, 20)),
          "steps": Tensor("steps", (20, 3)), "image": Tensor("image", (2, 9, 10))}
PARAMS = {"linear": {"width": 5}, "conv1d": {"out_channels": 4, "kernel_size": 3},
          "conv2d": {"out_channels": 4, "kernel_size": 3}, "dwsep_conv1d": {"out_channels": 4, "kernel_size": 3},
          "dwsep_conv2d": {"out_channels": 4, "kernel_size": 3, "padding": "same"},
          "lstm": {"hidden_size": 6, "bidirectional": True, "num_layers": 2, "dropout": 0.1},
          "gru": {"hidden_size": 6}, "maxpool": {"kernel_size": 3, "stride": 2}, "dropout": {"p": 0.2},
          "activation": {"op": "gelu"}}


def single(op: str, x: Tensor, params: dict) -> torch.Tensor:
    builder = DEFAULT_REGISTRY[op]
    full = builder.with_defaults(params)
    y = builder.infer(x, full)
    module = builder.build_layer(x, full).eval()
    out = module(torch.randn(2, *x.shape))
    assert tuple(out.shape) == (2, *y.shape), (op, x, y)
    return out


@pytest.mark.parametrize("op", sorted(DEFAULT_REGISTRY.searchable()))
def test_every_op_builds_the_shape_it_infers(op):
    builder = DEFAULT_REGISTRY[op]
    for kind in builder.accepts:
        single(op, INPUTS[kind], PARAMS.get(op, {}))


@pytest.mark.parametrize("op", sorted(n for n, o in DEFAULT_REGISTRY.ops.items() if o.adapter and n != "reshape"))
def test_every_adapter_builds_the_shape_it_infers(op):
    src = next(a for (a, b), name in DEFAULT_REGISTRY.transitions.items() if name == op)
    single(op, INPUTS[src], {})


@pytest.mark.parametrize("op,x,params,reason", [
    ("conv1d", Tensor("channels", (3, 4)), {"out_channels": 2, "kernel_size": 5}, "longer than the input"),
    ("conv1d", Tensor("channels", (3, 8)), {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": "same"},
     "needs stride 1"),
    ("maxpool", Tensor("channels", (3, 1)), {}, "longer than the input"),
    ("conv2d", Tensor("image", (1, 8, 2)), {"out_channels": 2, "kernel_size": 3}, "longer than the input"),
])
def test_impossible_shapes_are_infeasible(op, x, params, reason):
    builder = DEFAULT_REGISTRY[op]
    with pytest.raises(Infeasible, match=reason):
        builder.infer(x, builder.with_defaults(params))


def test_padding_same_keeps_the_length():
    out = single("conv1d", INPUTS["channels"], {"out_channels": 4, "kernel_size": 5, "padding": "same"})
    assert out.shape == (2, 4, 20)


ADAPTED = """\
input: [3, 32]
output: 4
sequence:
  - {block: conv, op_candidates: conv1d, conv1d: {out_channels: 8, kernel_size: 3}}
  - {block: rnn, op_candidates: lstm, lstm: {hidden_size: 5}}
  - {block: dense, op_candidates: linear, linear: {width: 6}}
  - {block: back, op_candidates: conv1d, conv1d: {out_channels: 2, kernel_size: 3}}
  - {block: img, op_candidates: conv2d, conv2d: {out_channels: 2, kernel_size: 1}}
  - {block: head, op_candidates: linear}
"""


def test_adapters_are_inserted_listed_and_visible_in_the_model(write_space, trial_factory):
    space, diags = check_file(write_space(ADAPTED))
    assert space is not None, diags
    cand = sample(space, trial_factory().ask())
    arch = cand.architecture
    ops = [layer.op for layer in arch.layers]
    assert ops == ["conv1d", "to_steps", "lstm", "last_step", "linear", "vector_to_channels", "conv1d",
                   "channels_to_image", "conv2d", "to_vector", "linear"]
    assert [layer.adapter for layer in arch.layers].count(True) == 5
    model = build(arch).eval()
    assert [name.split("_", 1)[1] for name, _ in model.named_children()] == ops
    assert model(torch.randn(3, 3, 32)).shape == (3, 4)


def test_reconstruction_output_gets_a_reshape(write_space, trial_factory):
    space, _ = check_file(write_space("input: [2, 10]\noutput: [2, 10]\nsequence:\n"
                                      "  - {block: head, op_candidates: linear}\n"))
    arch = sample(space, trial_factory().ask()).architecture
    assert [layer.op for layer in arch.layers] == ["to_vector", "linear", "reshape"]
    assert build(arch)(torch.randn(2, 2, 10)).shape == (2, 2, 10)


def test_last_layer_that_cannot_produce_output_is_infeasible(write_space, trial_factory):
    space, _ = check_file(write_space("input: [2, 10]\noutput: 3\nsequence:\n"
                                      "  - {block: head, op_candidates: conv1d, conv1d: {kernel_size: 3}}\n"))
    cand = sample(space, trial_factory().ask())
    assert cand.status == "infeasible" and "output is [3]" in cand.reason


def test_custom_op_registers_in_a_private_registry(write_space, trial_factory):
    registry = DEFAULT_REGISTRY.copy()

    @registry.register("scale")
    class Scale(LayerBuilder):
        params = (Param("factor", "float", default=2.0, gt=0),)

        def infer(self, x, p):
            return x

        def build_layer(self, x, p):
            class Mul(torch.nn.Module):
                def forward(self, t):
                    return t * p["factor"]

            return Mul()

    text = "input: 4\noutput: 2\nsequence:\n  - {block: s, op_candidates: scale, scale: {factor: [0.5, 3.0]}}\n" \
           "  - {block: head, op_candidates: linear}\n"
    path = write_space(text)
    assert check_file(path)[0] is None  # unknown to the default registry
    space, diags = check_file(path, registry)
    assert space is not None, diags
    arch = sample(space, trial_factory().ask(), registry).architecture
    assert arch.layers[0].op == "scale"
    assert build(arch, registry)(torch.ones(1, 4)).shape == (1, 2)
    assert "scale" not in DEFAULT_REGISTRY


def test_architecture_round_trip_rebuilds_identical_weights():
    x = Tensor("channels", (2, 16))
    conv = Layer("conv1d", DEFAULT_REGISTRY["conv1d"].with_defaults({"out_channels": 3, "kernel_size": 3}), "c", x,
                 Tensor("channels", (3, 14)))
    flat = Layer("to_vector", {}, "a", conv.output, Tensor("vector", (42,)), adapter=True)
    head = Layer("linear", {"width": 2, "activation": "identity"}, "h", flat.output, Tensor("vector", (2,)), last=True)
    arch = Architecture(x, Tensor("vector", (2,)), (conv, flat, head), "abc")
    torch.manual_seed(0)
    first = build(arch)
    torch.manual_seed(0)
    again = build(Architecture.loads(arch.dumps()))
    assert str(first) == str(again)
    for (n1, p1), (n2, p2) in zip(first.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert Architecture.loads(arch.dumps()).hash == arch.hash
