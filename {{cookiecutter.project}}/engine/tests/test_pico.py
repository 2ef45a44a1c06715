"""The pico target end to end: export (C99 firmware + LiteRT .tflite checked in TFLM) -> build
(arm-none-eabi-gcc, size checks for RP2040/RP2350) -> bench on the simulated Pico 2 (QEMU
mps2-an505 over a serial pty), through the CLI and the board inventory like a real board."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from explorer.cli import main
from explorer.targets import bench, build, export, get_target, load_model_dir
from explorer.targets.cgen import INT8_TOLERANCE
from explorer.targets.sampled import sampled_model_dirs

from .services import unavailable

SPACES = Path(__file__).parent / "spaces"


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            unavailable(tool)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One model of each shape the Pico runs: 1-D conv, 2-D conv, MLP."""
    root = tmp_path_factory.mktemp("pico-models")
    reflection = get_target("pico").reflection
    return {space: sampled_model_dirs(SPACES / f"{space}.yaml", 1, root / space, seed=11, samples=8,
                                      reflection=reflection)[0]
            for space in ("litert_conv1d", "litert_conv2d", "litert_mlp")}


@pytest.mark.parametrize("space, dtype", [("litert_conv1d", "int8"), ("litert_conv2d", "int8"),
                                          ("litert_mlp", "float32")])
def test_export_build_bench_on_the_simulated_pico(models, tmp_path, space, dtype):
    art = tmp_path / "art"
    found = export("pico", models[space], art, {"dtype": dtype})
    assert {"c/model.c", "c/kernels.c", "model.tflite", "samples.npz"} <= set(found["files"])
    assert found["tflite"]["tflm_arena_bytes"] > 0
    built = build(art, "native")["build"]
    assert built["chip"]["chip"] == "rp2350" and built["chip"]["fits"]
    assert built["bss"] >= found["c"]["arena_bytes"]  # the static arena is in the image's RAM
    metrics = bench(art, None, {"timeout": 30})
    assert metrics["simulated"] is True and metrics["cost_unit"] == "instructions"
    assert metrics["simulated_instructions"]["median"] > 0 and "latency_ms" not in metrics
    reference = load_model_dir(models[space]).samples.reference
    span = float(reference.max() - reference.min())
    if dtype == "float32":
        assert metrics["agreement"]["max_abs_diff"] <= 1e-4 * max(span, 1.0)
        assert metrics["agreement"]["argmax_match"] == 1.0
    else:
        assert metrics["agreement"]["max_abs_diff"] <= INT8_TOLERANCE * span
        assert metrics["agreement"]["argmax_match"] >= 0.75
        assert found["tflite"]["tflm_agreement"]["argmax_agreement"] >= 0.75
        assert metrics["tflm_arena_bytes"] == found["tflite"]["tflm_arena_bytes"]


def test_cli_bench_through_the_inventory_and_rp2040_limits(models, tmp_path, capsys):
    art = tmp_path / "art"
    assert main(["export", "--target", "pico", "--variant", "rp2040", str(models["litert_conv1d"]), "-o", str(art)]) == 0
    assert main(["build", str(art), "--toolchain", "native"]) == 0
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["build"]["chip"]["chip"] == "rp2040" and manifest["build"]["chip"]["sram_limit"] == 264 * 1024
    inventory = tmp_path / "boards.yaml"
    inventory.write_text("boards:\n  - name: pico2-sim\n    kind: pico-serial\n    variant: rp2350\n"
                         "    simulator: qemu-mps2-an505\n    timeout: 20\n")
    capsys.readouterr()
    assert main(["bench", "--target", "pico", str(art), "--board", "pico2-sim", "--inventory", str(inventory)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["board"] == "pico2-sim" and metrics["n"] == 8


def test_reflection_refuses_what_the_pico_cannot_run(tmp_path, capsys):
    lstm = sampled_model_dirs(SPACES / "rpi_lstm.yaml", 1, tmp_path / "m", seed=0, samples=2)[0]
    assert main(["export", "--target", "pico", str(lstm), "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "target pico cannot run this model" in err and "lstm" in err
    assert main(["export", "--target", "pico", "--variant", "rp9999", str(lstm), "-o", str(tmp_path / "a")]) == 2
    assert "unknown pico variant 'rp9999'" in capsys.readouterr().err
    reflection = get_target("pico").reflection_for("rp2040")
    assert (reflection.sram_bytes, reflection.flash_bytes) == (264 * 1024, 2 * 1024 * 1024)
    assert "lstm" not in reflection.ops and "conv1d" in reflection.ops


def test_bench_before_build_is_a_user_error(models, tmp_path, capsys):
    art = tmp_path / "art"
    export("pico", models["litert_mlp"], art, {"dtype": "float32"})
    assert main(["bench", str(art)]) == 2
    assert "not built yet (hint: explorer build" in capsys.readouterr().err


def test_a_model_litert_cannot_convert_keeps_its_firmware_and_the_reason(tmp_path):
    # conv1d with a tanh activation followed by batch norm: litert-torch 0.10's int8 passes refuse it
    folder = sampled_model_dirs(SPACES / "cgen_conv1d.yaml", 1, tmp_path / "m", seed=11, samples=4,
                                reflection=get_target("pico").reflection)[0]
    found = export("pico", folder, tmp_path / "art", {"dtype": "int8"})
    assert "same scale constraint" in found["tflite"]["error"] and "model.tflite" not in found["files"]
    build(tmp_path / "art", "native")
    metrics = bench(tmp_path / "art", None, {"timeout": 30})
    assert metrics["n"] == 4 and metrics["tflm_arena_bytes"] is None
