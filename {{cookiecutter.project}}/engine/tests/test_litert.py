"""LiteRT for the Pico: litert-torch conversion, checked in the real tflite-micro interpreter.

Models are sampled (random weights, random inputs) from the concrete spaces in tests/spaces/
(``litert_conv1d.yaml``: the template's mcu_tiny space on [3, 64]; ``litert_conv2d.yaml``;
``litert_mlp.yaml``; ``litert_squash.yaml`` for sigmoid/tanh). Tolerances are the ones
``explorer.targets.litert`` documents: float32 TFLM vs PyTorch within ``FLOAT_TOLERANCE``; int8
TFLM vs LiteRT's interpreter on the same file within ``TFLM_VS_LITERT_STEPS`` output steps, and vs
PyTorch an argmax agreement of at least ``INT8_ARGMAX_AGREEMENT`` and at most
``INT8_OUTPUT_STEPS`` output steps. The arena model (``explorer.evaluate.arena``) is checked
against the interpreter's own allocation report.
"""

from __future__ import annotations

import importlib

import pytest

from explorer.errors import UserError
from explorer.evaluate import arena
from explorer.targets import litert
from explorer.targets.model import load_model_dir
from explorer.targets.sampled import sampled_model_dirs

from .conftest import SPACES
from .services import unavailable

PER_SPACE = 2


@pytest.fixture(scope="module")
def extras():
    for module in ("litert_torch", "tflite_micro", "ai_edge_litert"):
        try:
            importlib.import_module(module)
        except ImportError:
            unavailable(f"{module} (pip install -e 'engine[pico]')")


@pytest.fixture(scope="module")
def converted(tmp_path_factory, extras):
    """(model, facts, tflite path) per sampled model of a space, per dtype; converted once."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("litert")

    def get(space: str, quantize: str):
        if (space, quantize) not in cache:
            folders = sampled_model_dirs(SPACES / f"litert_{space}.yaml", PER_SPACE, root / space, seed=3,
                                         samples=32, reflection=litert.REFLECTION)
            assert len(folders) == PER_SPACE
            done = []
            for folder in folders:
                model = load_model_dir(folder)
                facts = litert.convert(model, folder / quantize, quantize)
                done.append((model, facts, folder / quantize / litert.TFLITE))
            cache[space, quantize] = done
        return cache[space, quantize]

    return get


@pytest.mark.parametrize("space", ["conv1d", "conv2d", "mlp"])
def test_float_tflm_matches_pytorch(converted, space):
    for model, facts, path in converted(space, "none"):
        assert facts["quantization"] == {"input_scale": None, "input_zero_point": None, "output_scale": None,
                                         "output_zero_point": None}
        assert path.stat().st_size == facts["tflite_bytes"]
        check = litert.tflm_check(path, model.samples)
        assert check["outputs"].shape == model.samples.reference.shape
        assert check["agreement"]["max_abs_diff"] <= litert.FLOAT_TOLERANCE, facts["ops"]
        assert check["agreement"]["argmax_agreement"] == 1.0


@pytest.mark.parametrize("space", ["conv1d", "conv2d", "mlp"])
def test_int8_tflm_within_tolerance(converted, space):
    for model, facts, path in converted(space, "int8"):
        q = facts["quantization"]
        assert q["input_scale"] > 0 and q["output_scale"] > 0 and -128 <= q["input_zero_point"] <= 127
        assert "DEQUANTIZE" not in facts["ops"], facts["ops"]  # int8 end to end
        check = litert.tflm_check(path, model.samples)
        steps = check["agreement"]["max_abs_diff"] / q["output_scale"]
        assert check["agreement"]["argmax_agreement"] >= litert.INT8_ARGMAX_AGREEMENT, facts["ops"]
        assert steps <= litert.INT8_OUTPUT_STEPS, facts["ops"]
        kernels = litert.kernel_agreement(path.read_bytes(), model.samples.x)
        assert kernels["checked_ops"] >= len(model.samples.x)
        assert kernels["max_steps"] <= litert.TFLM_VS_LITERT_STEPS, facts["ops"]


def test_int8_sigmoid_and_tanh_kernels_match_litert(converted, monkeypatch, tmp_path):
    """TANH needs the fixed output scale 1/128 (``_quantizer``): with litert-torch's own quantizer
    TFLM's TANH disagrees with LiteRT's by many steps."""
    for model, facts, path in converted("squash", "int8"):
        assert {"LOGISTIC", "TANH"} & set(facts["ops"]), facts["ops"]
        assert litert.kernel_agreement(path.read_bytes(), model.samples.x)["max_steps"] <= litert.TFLM_VS_LITERT_STEPS
    from litert_torch.quantize import pt2e_quantizer

    stock = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    monkeypatch.setattr(litert, "_quantizer", lambda: stock)
    model = next(m for m, facts, _ in converted("squash", "int8") if "TANH" in facts["ops"])
    litert.convert(model, tmp_path, "int8")
    assert litert.kernel_agreement((tmp_path / litert.TFLITE).read_bytes(), model.samples.x)["max_steps"] > 2


def test_arena_is_positive_and_stable(converted):
    model, _, path = converted("conv1d", "int8")[0]
    first, again = litert.tflm_arena_bytes(path), litert.tflm_arena_bytes(path)
    allocations = litert.tflm_allocations(path)
    assert first == again == allocations["total"] == allocations["head"] + allocations["tail"]
    assert allocations["head"] > 0 and allocations["tail"] > 0
    assert litert.tflm_check(path, model.samples)["arena_bytes"] == first  # after 32 inferences, too


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_arena_model_reproduces_tflm(converted, quantize):
    """The planner replayed on the real graph gives TFLM's head to the byte; the estimate from the
    architecture alone (no conversion) is within 10% of the whole arena."""
    dtype = "int8" if quantize == "int8" else "float32"
    for space in ("conv1d", "conv2d", "mlp"):
        for model, facts, path in converted(space, quantize):
            measured = litert.tflm_allocations(path)
            graph = litert.tflite_graph(path.read_bytes())
            assert arena.head_bytes(graph) == measured["head"], facts["ops"]
            predicted = arena.arena_breakdown(model.architecture, dtype)
            assert predicted["ops"] == facts["ops"]
            assert abs(predicted["total"] - measured["total"]) <= 0.1 * measured["total"], (predicted, measured)


def test_what_stays_out_of_the_reflection_really_fails(tmp_path, extras):
    """gelu has no TFLM kernel; an LSTM over more than 10 steps needs a CONCATENATION TFLM refuses."""
    assert not litert.REFLECTION.supports_value("activation", "op", "gelu")
    assert not litert.REFLECTION.supports_op("lstm") and not litert.REFLECTION.supports_op("gru")
    head = '  - {block: head, op_candidates: linear}\n'
    spaces = {"gelu": "input: [8]\noutput: 4\nsequence:\n  - {block: a, op_candidates: linear, "
                      "linear: {width: 8, activation: gelu}}\n" + head,
              "lstm": "input: [2, 12]\noutput: 4\nsequence:\n  - {block: a, op_candidates: lstm, "
                      "lstm: {hidden_size: 4}}\n" + head}
    for name, text in spaces.items():
        (tmp_path / f"{name}.yaml").write_text(text)
        folder = sampled_model_dirs(tmp_path / f"{name}.yaml", 1, tmp_path / name, samples=4)[0]
        model = load_model_dir(folder)
        litert.convert(model, folder / "out", "none")  # converts fine ...
        with pytest.raises(RuntimeError, match="allocate tensors"):  # ... but TFLM cannot run it
            litert.tflm_check(folder / "out" / litert.TFLITE, model.samples)


def test_missing_extra_is_one_clear_line(monkeypatch, tmp_path):
    real_import = importlib.import_module

    def no_litert(name, *args, **kwargs):
        if name == "litert_torch":
            raise ImportError("No module named 'litert_torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_litert)
    folder = sampled_model_dirs(SPACES / "litert_mlp.yaml", 1, tmp_path, samples=2)[0]
    with pytest.raises(UserError) as caught:
        litert.convert(load_model_dir(folder), tmp_path / "out")
    assert "\n" not in str(caught.value)
    assert "litert_torch" in str(caught.value) and "engine[pico]" in str(caught.value)
    assert not (tmp_path / "out" / litert.TFLITE).exists()


def test_convert_refuses_an_unknown_quantisation(tmp_path):
    folder = sampled_model_dirs(SPACES / "litert_mlp.yaml", 1, tmp_path, samples=2)[0]
    with pytest.raises(ValueError, match="int8"):
        litert.convert(load_model_dir(folder), tmp_path / "out", "int4")
