"""The target layer shared by every board: model folders, manifests, the JSON-lines protocol,
reflection applied to spaces, and the host target end to end (TorchScript + ONNX, real runners
as local processes)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.cli import main
from explorer.errors import UserError
from explorer.space import load_space
from explorer.targets import OpSupport, Reflection, bench, build, export, load_model_dir
from explorer.targets.protocol import BoardError, EventStream, LineReader
from explorer.targets.restrict import restrict
from explorer.targets.sampled import sampled_model_dirs

from .conftest import SPACES

CONV1D = SPACES / "listing3.yaml"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return sampled_model_dirs(CONV1D, 2, tmp_path_factory.mktemp("models"), seed=3, samples=6)


def test_host_export_build_bench_agrees_with_pytorch(model_dirs, tmp_path):
    for folder in model_dirs:
        art = tmp_path / folder.name
        found = export("host", folder, art)
        assert set(found["files"]) >= {"model.ts", "model.onnx", "samples.npz"}
        assert found["export_check"]["onnx"] < 1e-4 and found["export_check"]["torchscript"] < 1e-4
        assert build(art)["build"]["toolchain"] == "native"
        metrics = bench(art, None, {"repeats": 1})
        assert metrics["n"] == 6
        assert metrics["agreement"]["argmax_match"] == 1.0
        assert metrics["agreement"]["max_abs_diff"] < 1e-4
        assert metrics["torchscript"]["agreement"]["max_abs_diff"] < 1e-4
        assert metrics["latency_ms"]["median"] > 0
        model = load_model_dir(folder)
        expected = float((model.samples.reference.argmax(1) == model.samples.y).mean())
        assert metrics["accuracy"] == pytest.approx(expected)


def test_manifest_catches_a_file_changed_after_export(model_dirs, tmp_path, capsys):
    art = tmp_path / "art"
    export("host", model_dirs[0], art)
    (art / "model.onnx").write_bytes(b"tampered")
    assert main(["bench", str(art)]) == 2
    assert "model.onnx changed after export (sha256 mismatch)" in capsys.readouterr().err


def test_cli_export_build_bench_and_user_errors(model_dirs, tmp_path, capsys):
    art = tmp_path / "art"
    assert main(["export", "--target", "host", str(model_dirs[0]), "-o", str(art)]) == 0
    assert main(["build", "--target", "host", str(art)]) == 0
    assert main(["bench", "--target", "host", str(art), "--repeats", "1", "-o", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["target"] == "host"
    capsys.readouterr()
    cases = [
        (["export", "--target", "hots", str(model_dirs[0]), "-o", "x"], "unknown target 'hots' (hint: did you mean 'host'?)"),
        (["export", "--target", "host", str(tmp_path / "nope"), "-o", "x"], "no such model folder"),
        (["export", "--target", "host", str(tmp_path), "-o", "x"], "not an exported model folder"),
        (["bench", "--target", "pico", str(art)], "exported for target 'host', not 'pico'"),
        (["build", "--toolchain", "cloud", str(art)], "unknown toolchain 'cloud'"),
        (["bench", str(art), "--board", "pi-1", "--inventory", str(tmp_path / "none.yaml")], "no such inventory file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr().err
        assert message in captured and "Traceback" not in captured and len(captured.strip().splitlines()) == 1


def test_bench_board_must_exist_and_serve_the_target(model_dirs, tmp_path, capsys):
    art = tmp_path / "art"
    export("host", model_dirs[0], art)
    inventory = tmp_path / "boards.yaml"
    inventory.write_text("boards:\n  - name: pi-1\n    kind: rpi-ssh\n    host: 127.0.0.1\n    user: pi\n"
                         "  - name: pico-1\n    kind: pico-serial\n    devcie: /dev/ttyACM0\n")
    assert main(["bench", str(art), "--board", "pi-1", "--inventory", str(inventory)]) == 2
    assert "unknown key 'devcie' (hint: did you mean 'device'?)" in capsys.readouterr().err
    inventory.write_text("boards:\n  - name: pi-1\n    kind: rpi-ssh\n    host: 127.0.0.1\n    user: pi\n")
    assert main(["bench", str(art), "--board", "pi-2", "--inventory", str(inventory)]) == 2
    assert "no board named 'pi-2' (hint: did you mean 'pi-1'?)" in capsys.readouterr().err
    assert main(["bench", str(art), "--board", "pi-1", "--inventory", str(inventory)]) == 2
    assert "board 'pi-1' is a rpi-ssh board, it does not serve target 'host'" in capsys.readouterr().err


def lines(*items: str, delay: float = 0.0):
    """A readline over fixed lines (None ends the stream)."""
    queue = list(items)

    def readline(timeout: float):
        if not queue:
            time.sleep(min(timeout, 0.05))
            raise TimeoutError
        time.sleep(delay)
        return queue.pop(0)

    return readline


READY = '{"event": "ready", "input_size": 3}'


def test_protocol_reads_ready_results_done_after_boot_chatter():
    stream = EventStream(lines("booting...", "", READY, '{"event":"result","index":0,"output":[1,2]}',
                               '{"event":"result","index":1,"output":[3,4],"time_ns":5}', '{"event":"done"}'),
                         "board", 1.0)
    assert stream.expect_ready()["input_size"] == 3
    assert [r["output"] for r in stream.results(2)] == [[1, 2], [3, 4]]


@pytest.mark.parametrize("feed, message", [
    ((READY, "\x00\xffgarbage"), "garbage instead of protocol output"),
    ((READY,), "no result 0 of 1 within 0.3 s"),
    ((READY, None), "connection closed while waiting for result 0 of 1"),
    ((READY, '{"event": "error", "message": "arena too small"}'), "board reported an error: arena too small"),
    ((READY, '{"event": "result", "index": 4, "output": []}'), "malformed result line"),
    ((READY, '{"event": "done"}'), "board stopped after 0 of 1 results"),
])
def test_protocol_faults_are_one_clear_board_error(feed, message):
    stream = EventStream(lines(*feed), "pico-1", 0.3)
    started = time.monotonic()
    with pytest.raises(BoardError, match=message):
        stream.expect_ready()
        stream.results(1)
    assert time.monotonic() - started < 2


def test_protocol_gives_up_on_endless_chatter_before_ready():
    stream = EventStream(lines(*["noise"] * 100), "pico-1", 5.0)
    with pytest.raises(BoardError, match="garbage"):
        stream.expect_ready()


def test_line_reader_on_a_real_pipe_times_out_then_reads():
    read_fd, write_fd = os.pipe()
    reader = LineReader(os.fdopen(read_fd, "rb"), "pipe")
    with pytest.raises(TimeoutError):
        reader.readline(0.1)
    writer = os.fdopen(write_fd, "wb")
    threading.Timer(0.1, lambda: (writer.write(READY.encode() + b"\n"), writer.close())).start()
    assert json.loads(reader.readline(2.0))["event"] == "ready"
    assert reader.readline(2.0) is None


def test_a_crashing_board_program_is_a_board_error(tmp_path):
    from explorer.targets.local import run_program

    with pytest.raises(BoardError, match="connection closed.*stderr: .*boom"):
        run_program([sys.executable, "-c", f"print('{READY}', flush=True); raise SystemExit('boom')"], 1, 5.0)


TINY = Reflection(ops={"conv1d": OpSupport({"kernel_size": (3,)}), "linear": OpSupport(), "maxpool": OpSupport(),
                       "to_vector": OpSupport()})


def test_restrict_keeps_only_supported_ops_and_values():
    space = load_space(CONV1D)
    restricted, findings = restrict(space, TINY)
    messages = [f.message for f in findings]
    assert "op 'identity' is not supported" in messages
    assert "conv1d.kernel_size: only [3] of [3, 5] are supported" in messages
    assert not any(f.fatal for f in findings)
    from explorer.sampling import draw

    for record in draw(restricted, 20, 0, reflection=TINY):
        assert record["status"] == "ok", record["reason"]
        ops = {layer["op"] for layer in record["architecture"]["layers"]}
        assert ops <= {"conv1d", "linear", "maxpool", "to_vector"}
        assert all(layer["params"]["kernel_size"] == 3 for layer in record["architecture"]["layers"]
                   if layer["op"] == "conv1d")


def test_restrict_reports_a_block_without_any_runnable_choice():
    space = load_space(CONV1D)
    _, findings = restrict(space, Reflection(ops={"linear": OpSupport()}))
    fatal = [f for f in findings if f.fatal]
    assert fatal and fatal[0].block == ("composites", "conv-block", "sequence", 0)
    assert Reflection(ops=None).problems(sampled_arch()) == []


def sampled_arch():
    from explorer.sampling import draw
    from explorer.space import Architecture

    record = draw(load_space(CONV1D), 1, 0)[0]
    return Architecture.from_json(record["architecture"])


def test_targets_lists_every_target_with_its_reflection(capsys):
    assert main(["targets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"host", "rpi", "pico", "fpga"}
    assert rows["host"]["reflection"]["ops"] is None
    assert "lstm" not in rows["pico"]["reflection"]["ops"] and "conv1d" in rows["pico"]["reflection"]["ops"]
    assert rows["pico"]["reflection"]["sram_bytes"] == 520 * 1024
    assert "conv1d" not in rows["fpga"]["reflection"]["ops"] and "linear" in rows["fpga"]["reflection"]["ops"]
    assert main(["targets"]) == 0 and "mps2-an505" in capsys.readouterr().out


def test_validate_for_a_target_locates_what_it_cannot_run(write_space, capsys):
    defaults = "default_op_params:\n  conv1d: {out_channels: 4, kernel_size: 3}\n  linear: {width: 8}\n"
    space = write_space("input: [3, 16]\noutput: 4\nsequence:\n  - block: features\n"
                        "    op_candidates: [conv1d, linear]\n  - block: head\n    op_candidates: linear\n" + defaults)
    assert main(["validate", "--target", "fpga", str(space)]) == 0
    err = capsys.readouterr().err
    assert f"{space}:5:20: warning: target fpga: op 'conv1d' is not supported (hint: sampling for this target skips it)" in err
    only_conv = write_space("input: [3, 16]\noutput: 4\nsequence:\n  - block: features\n    op_candidates: conv1d\n"
                            "  - block: head\n    op_candidates: linear\n" + defaults, "conv.yaml")
    assert main(["validate", "--target", "fpga", str(only_conv)]) == 2
    assert "error: target fpga: block 'features': no candidate op is supported" in capsys.readouterr().err
    assert main(["validate", "--target", "fpgaa", str(only_conv)]) == 2
    assert "unknown target 'fpgaa' (hint: did you mean 'fpga'?)" in capsys.readouterr().err
    assert main(["sample", "--target", "fpga", "-n", "5", "--json", str(space)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all("conv1d" not in {l["op"] for l in r["architecture"]["layers"]} for r in records if r["status"] == "ok")
