"""The C99 model generator: real gcc builds of models the DSL produces, run as processes and
compared with PyTorch; the arena plan; cross builds for aarch64 (run under qemu) and Cortex-M."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.errors import UserError
from explorer.ops import DEFAULT_REGISTRY
from explorer.ops.registry import Tensor
from explorer.space.architecture import Architecture, Layer
from explorer.targets.cgen import (INT8_TOLERANCE, REFLECTION, REFLECTION_INT8, compile_host, compile_kernels, generate,
                                   reflection_for, run_posix)
from explorer.targets.cgen.lower import lower
from explorer.targets.cgen.plan import Slot, overlaps, plan
from explorer.targets.model import load_model_dir, write_model_dir
from explorer.targets.protocol import BoardError
from explorer.targets.sampled import _randomise_norms, sampled_model_dirs

from .services import unavailable

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")

SPACES = Path(__file__).parent / "spaces"
SPACE_COUNTS = {"cgen_conv1d.yaml": 4, "cgen_conv2d.yaml": 3, "cgen_mlp.yaml": 3, "cgen_adapters.yaml": 3,
                "cgen_recurrent.yaml": 4}
INT8_SPACES = [space for space in SPACE_COUNTS if space != "cgen_recurrent.yaml"]  # recurrent: float32 only
STRICT = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """Model folders per test space (seeded, so the same models every run)."""
    root = tmp_path_factory.mktemp("cgen-models")
    return {space: sampled_model_dirs(SPACES / space, count, root / space, seed=3, samples=16, reflection=REFLECTION)
            for space, count in SPACE_COUNTS.items()}


@pytest.fixture(scope="module")
def kernels_o(tmp_path_factory):
    """The kernels compiled once (the same strict flags) and linked into every test model."""
    return compile_kernels(tmp_path_factory.mktemp("cgen-kernels") / "kernels.o")


def _run(folder: Path, out: Path, dtype: str, kernels: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Generate, build with gcc, run; returns (C outputs, PyTorch outputs, generate's facts)."""
    model = load_model_dir(folder)
    facts = generate(model, out, dtype)
    results = run_posix(compile_host(out, kernels_object=kernels), out / "inputs.bin", timeout=30)
    outputs = np.array([r["output"] for r in results], dtype=np.float64)
    return outputs, model.samples.reference.reshape(len(outputs), -1).astype(np.float64), facts


def _run_all(folders: list[Path], root: Path, dtype: str, kernels: Path) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda f: _run(f, root / f"{f.parent.name}-{f.name}-{dtype}", dtype, kernels), folders))


def _relative(outputs: np.ndarray, reference: np.ndarray) -> float:
    """Max absolute difference relative to the range of PyTorch's outputs."""
    return float(np.abs(outputs - reference).max() / max(np.ptp(reference), 1e-6))


@pytest.mark.parametrize("space", list(SPACE_COUNTS))
def test_float32_matches_pytorch(sampled, space, tmp_path, kernels_o):
    assert len(sampled[space]) == SPACE_COUNTS[space]
    runs = _run_all(sampled[space], tmp_path, "float32", kernels_o)
    for (outputs, reference, facts), folder in zip(runs, sampled[space]):
        assert outputs.shape == reference.shape
        np.testing.assert_allclose(outputs, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max(),
                                   err_msg=str(folder))
        assert facts["dtype"] == "float32" and facts["arena_bytes"] > 0 and facts["weight_bytes"] > 0


@pytest.mark.parametrize("space", INT8_SPACES)
def test_int8_within_documented_tolerance(sampled, space, tmp_path, kernels_o):
    runs = _run_all(sampled[space], tmp_path, "int8", kernels_o)
    agree = []
    for (outputs, reference, facts), folder in zip(runs, sampled[space]):
        assert _relative(outputs, reference) <= INT8_TOLERANCE, folder
        agree.append(outputs.argmax(1) == reference.argmax(1))
        assert facts["quantisation"]["weights"].startswith("int8")
    assert np.concatenate(agree).mean() >= 0.9


def test_int8_arena_is_a_quarter_of_float32(sampled, tmp_path):
    for folder in (sampled["cgen_conv1d.yaml"][0], sampled["cgen_mlp.yaml"][1]):
        model = load_model_dir(folder)
        f32 = generate(model, tmp_path / "f", "float32")
        s8 = generate(model, tmp_path / "q", "int8")
        buffers = len(lower(model.architecture, model.module()).buffers)
        assert f32["arena_bytes"] // 4 - 8 * buffers <= s8["arena_bytes"] <= f32["arena_bytes"] // 4 + 8 * buffers
        # int8 weights, int32 biases, float scales: far below float32 once the weights dominate
        assert "static const int8_t n1_w[" in (tmp_path / "q" / "model.c").read_text()
    assert s8["weight_bytes"] < f32["weight_bytes"] / 2


# ---------------------------------------------------------------- the arena plan


def _slots(folder: Path) -> list[Slot]:
    model = load_model_dir(folder)
    graph = lower(model.architecture, model.module())
    return [Slot(b.id, 4 * b.numel, b.first, b.last) for b in graph.buffers]


def test_arena_never_overlaps_live_tensors(sampled, tmp_path):
    """Over every sampled model: live buffers are disjoint, the arena is at least the largest set
    of buffers alive at one node and smaller than all buffers laid end to end."""
    for folders in sampled.values():
        for folder in folders:
            slots = _slots(folder)
            offsets, size = plan(slots)
            assert overlaps(slots, offsets) == []
            assert all(offsets[s.id] + s.size <= size for s in slots)
            nodes = range(max(s.last for s in slots) + 1)
            peak = max(sum(s.size for s in slots if s.first <= i <= s.last) for i in nodes)
            assert peak <= size
            if len(slots) >= 3:  # the input and the third buffer are never alive together
                assert size < sum(s.size for s in slots)
    folder = sampled["cgen_conv2d.yaml"][0]
    facts = generate(load_model_dir(folder), tmp_path, "float32")
    header = (tmp_path / "model.h").read_text()
    assert f"#define MODEL_ARENA_BYTES {facts['arena_bytes']}\n" in header
    assert "static float arena[MODEL_ARENA_BYTES / sizeof(float)];" in (tmp_path / "model.c").read_text()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 20), st.integers(0, 6)), min_size=1, max_size=25))
def test_plan_property(specs):
    slots = [Slot(i, size, first, first + length) for i, (size, first, length) in enumerate(specs)]
    offsets, size = plan(slots)
    assert overlaps(slots, offsets) == []
    assert all(offsets[s.id] % 8 == 0 and offsets[s.id] + s.size <= size for s in slots)
    assert size <= sum((s.size + 7) // 8 * 8 for s in slots)


# ---------------------------------------------------------------- each op alone


def _single(name: str, x: Tensor, **params) -> tuple[str, Architecture]:
    builder = DEFAULT_REGISTRY[name]
    full = builder.with_defaults(params)
    y = builder.infer(x, full)
    layer = Layer(name, full, name, x, y, adapter=builder.adapter)
    label = f"{name}-{x.kind}{list(x.shape)}-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    return label, Architecture(x, y, (layer,), "test")


CH, IMG, VEC, STEPS = Tensor("channels", (3, 11)), Tensor("image", (2, 7, 6)), Tensor("vector", (10,)), \
    Tensor("steps", (5, 4))
SINGLE = [
    _single("conv1d", CH, out_channels=4, kernel_size=3),
    _single("conv1d", CH, out_channels=2, kernel_size=4, stride=2, padding=2, activation="relu"),
    _single("conv1d", CH, out_channels=3, kernel_size=4, padding="same", activation="gelu"),
    _single("conv2d", IMG, out_channels=3, kernel_size=3, stride=2, padding=1, activation="hardswish"),
    _single("conv2d", IMG, out_channels=2, kernel_size=2, padding="same", activation="relu6"),
    _single("dwsep_conv1d", CH, out_channels=5, kernel_size=3, padding=1, activation="sigmoid"),
    _single("dwsep_conv2d", IMG, out_channels=4, kernel_size=3, stride=2, activation="tanh"),
    _single("linear", VEC, width=6, activation="tanh"),
    _single("maxpool", CH, kernel_size=3, stride=2),
    _single("maxpool", IMG, kernel_size=2),
    _single("avgpool", CH, kernel_size=2),
    _single("avgpool", IMG, kernel_size=3, stride=1),
    _single("global_avgpool", CH), _single("global_avgpool", IMG), _single("global_avgpool", STEPS),
    _single("batchnorm", VEC), _single("batchnorm", CH), _single("batchnorm", IMG), _single("batchnorm", STEPS),
    _single("layernorm", VEC), _single("layernorm", CH), _single("layernorm", IMG), _single("layernorm", STEPS),
    *[_single("activation", CH, op=name) for name in REFLECTION.ops["activation"].params["op"]],
    _single("identity", CH), _single("dropout", VEC, p=0.5), _single("flatten", IMG),
    _single("to_vector", CH), _single("last_step", STEPS), _single("to_steps", CH), _single("to_channels", STEPS),
    _single("vector_to_channels", VEC), _single("vector_to_steps", VEC), _single("image_to_channels", IMG),
    _single("channels_to_image", CH), _single("reshape", VEC, shape=[2, 5]),
]
RECURRENT = [
    _single("lstm", STEPS, hidden_size=3), _single("gru", STEPS, hidden_size=3),
    _single("lstm", STEPS, hidden_size=2, num_layers=2, bidirectional=True, dropout=0.3),
    _single("gru", STEPS, hidden_size=4, num_layers=2, bidirectional=True),
]


def test_single_ops_cover_the_reflection():
    assert {arch.layers[0].op for _, arch in SINGLE} == set(REFLECTION_INT8.ops)
    assert {arch.layers[0].op for _, arch in SINGLE + RECURRENT} == set(REFLECTION.ops)


@pytest.fixture(scope="module")
def single_models(tmp_path_factory):
    import torch

    from explorer.build import build

    root = tmp_path_factory.mktemp("cgen-single")
    rng = np.random.default_rng(7)
    folders = []
    for i, (label, arch) in enumerate(SINGLE + RECURRENT):
        torch.manual_seed(i)
        model = build(arch).eval()
        _randomise_norms(model, rng)
        x = (rng.standard_normal((6, *arch.input.shape)) * 2).astype(np.float32)
        folders.append(write_model_dir(root / label, arch, model, x, np.zeros(6, dtype=np.int64)))
    return folders


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_each_op_alone_matches_torch(single_models, dtype, tmp_path, kernels_o):
    folders = single_models if dtype == "float32" else single_models[:len(SINGLE)]
    for (outputs, reference, _), folder in zip(_run_all(folders, tmp_path, dtype, kernels_o), folders):
        if dtype == "float32":
            np.testing.assert_allclose(outputs, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max(),
                                       err_msg=folder.name)
        else:
            assert _relative(outputs, reference) <= INT8_TOLERANCE, folder.name


# ---------------------------------------------------------------- protocol, refusals


def test_bench_protocol_and_broken_input(sampled, tmp_path):
    folder = sampled["cgen_mlp.yaml"][0]
    facts = generate(load_model_dir(folder), tmp_path, "float32")
    binary = compile_host(tmp_path)
    done = subprocess.run([binary, tmp_path / "inputs.bin", "3"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0] == ('{"event":"ready","input_size":20,"output_size":3,"arena_bytes":%d,"weight_bytes":%d,'
                        '"dtype":"float32"}' % (facts["arena_bytes"], facts["weight_bytes"]))
    assert lines[-1] == '{"event":"done","count":16}'
    results = run_posix(binary, tmp_path / "inputs.bin", repeats=3)
    assert [r["index"] for r in results] == list(range(16)) and all(r["time_ns"] > 0 for r in results)
    broken = tmp_path / "broken.bin"
    broken.write_bytes((tmp_path / "inputs.bin").read_bytes()[:4 * 20 + 6])
    with pytest.raises(BoardError, match="ends inside an input"):
        run_posix(binary, broken)


def test_refuses_what_it_cannot_run(tmp_path):
    from explorer.build import build

    assert not REFLECTION_INT8.supports_op("lstm") and not REFLECTION_INT8.supports_op("gru")
    assert reflection_for("int8") is REFLECTION_INT8 and reflection_for("float32") is REFLECTION
    label, arch = _single("lstm", STEPS, hidden_size=3)
    lstm = load_model_dir(write_model_dir(tmp_path / label, arch, build(arch), np.zeros((2, 5, 4), np.float32),
                                          np.zeros(2)))
    with pytest.raises(UserError, match="lstm"):
        generate(lstm, tmp_path / "out", "int8")
    # an op a plugin registered: no kernel, refused before anything is written
    plugin = Layer("my_plugin_op", {}, "features/my_plugin_op", CH, CH)
    foreign = replace(lstm, architecture=Architecture(CH, CH, (plugin,), "test"))
    with pytest.raises(UserError, match="'my_plugin_op' is not supported"):
        generate(foreign, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="dtype"):
        generate(lstm, tmp_path / "out", "float16")


# ---------------------------------------------------------------- cross builds


def test_aarch64_binary_under_qemu_matches_host(sampled, tmp_path):
    if not shutil.which("aarch64-linux-gnu-gcc") or not shutil.which("qemu-aarch64"):
        unavailable("aarch64-linux-gnu-gcc and qemu-aarch64")
    for folder, dtype in ((sampled["cgen_conv1d.yaml"][1], "float32"), (sampled["cgen_conv2d.yaml"][0], "int8")):
        out = tmp_path / dtype
        generate(load_model_dir(folder), out, dtype)
        host = run_posix(compile_host(out), out / "inputs.bin")
        arm = compile_host(out, "aarch64-linux-gnu-gcc", name="bench-aarch64")
        assert arm.read_bytes()[18] == 0xB7  # ELF e_machine EM_AARCH64
        emulated = run_posix(arm, out / "inputs.bin", exec_wrapper=["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
                             timeout=60)
        np.testing.assert_allclose([r["output"] for r in emulated], [r["output"] for r in host], rtol=1e-6,
                                   atol=1e-7)


@pytest.mark.parametrize("cpu", [("-mcpu=cortex-m33", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
                                 ("-mcpu=cortex-m0plus", "-mfloat-abi=soft")], ids=["cortex-m33", "cortex-m0plus"])
def test_cortex_m_compiles(sampled, cpu, tmp_path):
    """The model and kernels build freestanding for the Picos' cores; the arena is the whole .bss."""
    if not shutil.which("arm-none-eabi-gcc"):
        unavailable("arm-none-eabi-gcc")
    for dtype in ("float32", "int8"):
        out = tmp_path / dtype
        facts = generate(load_model_dir(sampled["cgen_conv2d.yaml"][1]), out, dtype)
        for source in ("model.c", "kernels.c"):
            subprocess.run(["arm-none-eabi-gcc", *STRICT, *cpu, "-mthumb", "-ffreestanding", "-c",
                            source, "-o", source + ".o"], cwd=out, check=True, capture_output=True)
        size = subprocess.run(["arm-none-eabi-size", "-A", "model.c.o"], cwd=out, check=True, capture_output=True,
                              text=True).stdout
        bss = next(int(line.split()[1]) for line in size.splitlines() if line.startswith(".bss"))
        assert bss == facts["arena_bytes"]


# ---------------------------------------------------------------- on-device pre-processing


def _preprocessed_model(root: Path, steps: list[tuple[str, dict]]) -> tuple[Path, np.ndarray]:
    """A conv1d model behind ``steps`` fitted on raw [2, 40] samples; returns (folder, raw test samples)."""
    import torch

    from explorer.build import build
    from explorer.preprocess.pipeline import Pipeline
    from explorer.preprocess.steps import Shape, Signal

    rng = np.random.default_rng(5)
    pipeline = Pipeline(tuple(steps))
    raw_train = (rng.standard_normal((32, 2, 40)) * [[3.0], [0.5]] + [[1.0], [-2.0]]).astype(np.float32)
    raw_test = (rng.standard_normal((12, 2, 40)) * [[3.0], [0.5]] + [[1.0], [-2.0]]).astype(np.float32)
    _, states = pipeline.fit(Signal(raw_train, np.zeros(32), False))
    x = pipeline.transform(Signal(raw_test, np.zeros(12), False), states).x
    inp = pipeline.input_tensor(Shape(2, 40, False))
    conv = _single("conv1d", inp, out_channels=4, kernel_size=5, activation="relu")[1].layers[0]
    pool = _single("global_avgpool", conv.output)[1].layers[0]
    head = _single("linear", pool.output, width=3)[1].layers[0]
    arch = Architecture(inp, head.output, (conv, pool, head), "test", preprocessing=pipeline.to_json())
    torch.manual_seed(0)
    folder = write_model_dir(root / "model", arch, build(arch).eval(), x, np.zeros(12, dtype=np.int64),
                             preprocessing={"steps": pipeline.to_json(), "state": states})
    return folder, raw_test


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_preprocessing_runs_on_device(dtype, tmp_path, kernels_o):
    """Raw samples through preprocess_invoke (causal filters, normalisation) and the model agree
    with the host pipeline followed by PyTorch."""
    steps = [("filter", {"type": "lowpass", "order": 4, "cutoff": 0.15, "cutoff_high": 0.45}),
             ("filter", {"type": "bandpass", "order": 2, "cutoff": 0.05, "cutoff_high": 0.3}),
             ("normalize", {"method": "zscore"})]
    folder, raw = _preprocessed_model(tmp_path, steps)
    out = tmp_path / "c"
    facts = generate(load_model_dir(folder), out, dtype)
    assert facts["preprocess"] == {"on_device": True, "steps": ["filter", "filter", "normalize"]}
    assert "#define MODEL_PREPROCESS 1" in (out / "model.h").read_text()
    raw_file = tmp_path / "raw.bin"
    raw.astype("<f4").tofile(raw_file)
    binary = compile_host(out, kernels_object=kernels_o)
    outputs = np.array([r["output"] for r in run_posix(binary, raw_file, raw=True)])
    prepared = np.array([r["output"] for r in run_posix(binary, out / "inputs.bin")])
    reference = load_model_dir(folder).samples.reference
    if dtype == "float32":
        np.testing.assert_allclose(outputs, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    else:
        assert _relative(outputs, reference) <= INT8_TOLERANCE
        assert _relative(outputs, prepared) <= INT8_TOLERANCE / 2


def test_windowing_stays_on_the_host(tmp_path, kernels_o):
    folder, raw = _preprocessed_model(tmp_path, [("normalize", {"method": "robust"}),
                                                 ("downsample", {"factor": 2})])
    out = tmp_path / "c"
    facts = generate(load_model_dir(folder), out, "float32")
    assert not facts["preprocess"]["on_device"] and "downsample" in facts["preprocess"]["reason"]
    assert "#define MODEL_PREPROCESS 0" in (out / "model.h").read_text()
    raw[:, :, :20].astype("<f4").tofile(tmp_path / "raw.bin")
    with pytest.raises(BoardError, match="no on-device pre-processing"):
        run_posix(compile_host(out, kernels_object=kernels_o), tmp_path / "raw.bin", raw=True)


def test_unfitted_pipeline_stays_on_the_host(tmp_path):
    """A folder without the fitted state (e.g. from ``sampled_model_dirs``) cannot normalise on the board."""
    folder, _ = _preprocessed_model(tmp_path, [("normalize", {"method": "zscore"})])
    model = load_model_dir(folder)
    model = replace(model, preprocessing={"steps": model.preprocessing["steps"], "state": []})
    facts = generate(model, tmp_path / "c", "float32")
    assert facts["preprocess"] == {"on_device": False, "steps": [],
                                   "reason": "the model folder has no fitted pre-processing state"}
