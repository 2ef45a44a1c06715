"""The TFLM arena model (explorer.evaluate.arena): the planner replays TFLM's greedy planner, the
lowering predicts litert-torch's graph. No torch or extras needed; the comparison with the real
tflite-micro interpreter is in test_litert.py."""

from __future__ import annotations

from explorer.evaluate import arena
from explorer.evaluate.memory import peak_activation_elements
from explorer.ops.registry import Tensor
from explorer.space.architecture import Architecture, Layer


def _arch(input_shape, kind, layers, output) -> Architecture:
    built, x = [], Tensor(kind, tuple(input_shape))
    for i, (op, params, out_kind, out_shape) in enumerate(layers):
        y = Tensor(out_kind, tuple(out_shape))
        built.append(Layer(op, params, f"l{i}", x, y, adapter=op in ("to_vector",), last=i == len(layers) - 1))
        x = y
    return Architecture(Tensor(kind, tuple(input_shape)), Tensor("vector", (output,)), tuple(built), "test")


CONV = dict(out_channels=8, kernel_size=5, stride=1, padding=0, activation="relu")
TINY_1D = _arch((3, 64), "channels", [
    ("conv1d", CONV, "channels", (8, 60)),
    ("maxpool", dict(kernel_size=2, stride=None), "channels", (8, 30)),
    ("global_avgpool", {}, "vector", (8,)),
    ("linear", dict(width=4, activation="identity"), "vector", (4,)),
], 4)


def test_greedy_plan_reuses_memory_and_breaks_ties_like_tflm():
    # three equal buffers alive one after another: two slots suffice
    assert arena.greedy_plan([(16, 0, 1), (16, 1, 2), (16, 2, 3)]) == 32
    # the largest goes first; the later equal one takes the low slot (ties in reverse order)
    assert arena.greedy_plan([(1536, 3, 4), (1536, 4, 5), (800, 6, 7), (768, 5, 6)]) == 3072


def test_lowering_follows_litert_torch_layout_rules():
    graph = arena.lower(TINY_1D, "int8")
    # channels-first input enters NHWC through RESHAPE + TRANSPOSE, relu fuses into the conv,
    # the global average leaves NHWC first and MEAN gets its int32 scratch buffer
    assert graph.kinds == ["RESHAPE", "TRANSPOSE", "CONV_2D", "MAX_POOL_2D", "TRANSPOSE", "RESHAPE", "MEAN",
                           "FULLY_CONNECTED"]
    assert [n.scratch for n in graph.nodes if n.kind == "MEAN"] == [32]


def test_head_holds_a_layers_input_and_output_and_the_transposed_copy():
    b = arena.arena_breakdown(TINY_1D, "int8")
    # peak at the pool: conv output (480) and pool output (240); the engine's layer-by-layer peak
    # agrees here, the transposes (192 + 192) stay below it
    assert b["head"] == peak_activation_elements(TINY_1D) == 480 + 240
    assert b["total"] == b["head"] + b["tail"] and b["tail"] > 1000
    assert arena.arena_breakdown(TINY_1D, "float32")["head"] == 4 * 720


def test_estimate_is_deterministic_and_grows_with_the_model():
    wide = _arch((3, 256), "channels", [
        ("conv1d", CONV, "channels", (8, 252)),
        ("maxpool", dict(kernel_size=2, stride=None), "channels", (8, 126)),
        ("global_avgpool", {}, "vector", (8,)),
        ("linear", dict(width=4, activation="identity"), "vector", (4,)),
    ], 4)
    assert arena.arena_estimate(TINY_1D) == arena.arena_estimate(TINY_1D)
    assert arena.arena_estimate(wide) > arena.arena_estimate(TINY_1D)
    assert arena.arena_estimate(TINY_1D, "float32") > arena.arena_estimate(TINY_1D, "int8")


def test_batchnorm_folds_only_after_a_bare_conv():
    bn = ("batchnorm", {}, "channels", (8, 60))
    bare = dict(CONV, activation="identity")
    folded = _arch((3, 64), "channels", [("conv1d", bare, "channels", (8, 60)), bn,
                                         ("to_vector", {}, "vector", (480,)),
                                         ("linear", dict(width=4, activation="identity"), "vector", (4,))], 4)
    kept = _arch((3, 64), "channels", [("conv1d", CONV, "channels", (8, 60)), bn,
                                       ("to_vector", {}, "vector", (480,)),
                                       ("linear", dict(width=4, activation="identity"), "vector", (4,))], 4)
    assert "DEPTHWISE_CONV_2D" not in arena.lower(folded).kinds
    assert arena.lower(kept).kinds.count("DEPTHWISE_CONV_2D") == 1


def test_estimator_reports_int8_and_float32():
    from explorer.evaluate import EstimateContext

    values = arena.TflmArenaEstimator().estimate(EstimateContext(TINY_1D))
    assert values["tflm_arena_int8"] == arena.arena_estimate(TINY_1D, "int8")
    assert values["tflm_arena_f32"] == arena.arena_estimate(TINY_1D, "float32")
