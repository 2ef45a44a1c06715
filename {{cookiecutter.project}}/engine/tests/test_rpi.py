"""The Raspberry Pi target end to end on a simulated Pi: a real sshd on 127.0.0.1 (key auth,
verified host key), SFTP upload, the TorchScript runner under this machine's Python, and the
aarch64 C99 binary under qemu-aarch64, started over SSH like on the board. Link faults (wrong or
unknown host key, closed or silent port, a board killed or hung mid-measurement) must end in one
clear ``BoardError`` line in bounded time."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.cli import main
from explorer.errors import UserError
from explorer.targets import bench, build, cgen, export, load_model_dir
from explorer.targets.manifest import sha256
from explorer.targets.protocol import BoardError
from explorer.targets.sampled import sampled_model_dirs
from explorer.targets.ssh import SshBoard, run_remote

from .conftest import SPACES
from .services_ssh import keygen, known_hosts_line, require_pi_tools, start_sshd

RPI_SPACES = {"conv1d": "rpi_conv1d.yaml", "conv2d": "rpi_conv2d.yaml", "lstm": "rpi_lstm.yaml"}
TS_TOLERANCE = 1e-5  # TorchScript runs PyTorch's kernels: max abs diff relative to the output range
C_TOLERANCE = 1e-4  # float32 C kernels (other summation order, libm activations)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def own_sshd(tmp_path):
    """A server of one test's own, for tests that kill or freeze it."""
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    require_pi_tools()
    out = tmp_path_factory.mktemp("models")
    # Only what the C generator runs in float32, so every model gets its aarch64 binary too.
    return {name: sampled_model_dirs(SPACES / file, 1, out / name, seed=5, samples=8,
                                     reflection=cgen.reflection_for("float32"))[0]
            for name, file in RPI_SPACES.items()}


@pytest.fixture(scope="module")
def built(models, tmp_path_factory):
    """The conv1d model exported and cross-compiled once, for the link-fault tests."""
    art = tmp_path_factory.mktemp("built") / "art"
    export("rpi", models["conv1d"], art)
    build(art, "native")
    return art


def relative(diff: float, folder: Path) -> float:
    return diff / max(float(np.abs(load_model_dir(folder).samples.reference).max()), 1e-6)


@pytest.mark.parametrize("space", list(RPI_SPACES))
def test_export_build_bench_over_ssh_agrees_with_pytorch(space, models, sshd, tmp_path):
    folder, art = models[space], tmp_path / "art"
    found = export("rpi", folder, art)
    assert {"model.ts", "samples.npz", "torchscript_runner.py"} <= set(found["files"])
    assert found["export_check"]["torchscript"] <= TS_TOLERANCE
    assert found["artifacts"]["c"] == "c" and found["c"]["dtype"] == "float32"
    facts = build(art, "native")["build"]
    assert facts["toolchain"] == "native"
    binary = art / "c" / "bench"
    assert binary.read_bytes()[18:20] == (183).to_bytes(2, "little")  # EM_AARCH64
    assert facts["binaries"] == {"c": "c/bench"} and facts["binary_bytes"] == binary.stat().st_size

    board = sshd.board()
    metrics = bench(art, board, {"repeats": 2})
    assert metrics["target"] == "rpi" and metrics["board"] == "pi-sim" and metrics["uploaded"]
    assert metrics["remote"].startswith(board.workdir) and (Path(metrics["remote"]) / "model.ts").is_file()
    assert metrics["runner"] == "torchscript" and metrics["n"] == 8
    assert relative(metrics["agreement"]["max_abs_diff"], folder) <= TS_TOLERANCE
    assert metrics["agreement"]["argmax_match"] == 1.0
    assert metrics["latency_ms"]["median"] > 0
    model = load_model_dir(folder)
    assert metrics["accuracy"] == pytest.approx(float((model.samples.reference.argmax(1) == model.samples.y).mean()))
    c = metrics["c"]  # the aarch64 binary ran on the "Pi" through qemu-aarch64, started over SSH
    assert c["runtime"] == "c99" and c["emulated"] == "qemu-aarch64" and c["n"] == 8
    assert relative(c["agreement"]["max_abs_diff"], folder) <= C_TOLERANCE
    assert c["agreement"]["argmax_match"] == 1.0
    assert c["arena_bytes"] == found["c"]["arena_bytes"] and c["binary_bytes"] == facts["binary_bytes"]


def test_a_model_outside_the_c_generator_is_torchscript_only(models, sshd, tmp_path):
    """int8 C kernels have no LSTM: the artifact says why, builds nothing and benches TorchScript."""
    art = tmp_path / "art"
    found = export("rpi", models["lstm"], art, {"dtype": "int8"})
    assert "c" not in found["artifacts"] and "lstm" in found["c"]["skipped"] and not (art / "c").exists()
    assert build(art, "native")["build"]["binaries"] == {}
    metrics = bench(art, sshd.board(), {"repeats": 1})
    assert metrics["runner"] == "torchscript" and "c" not in metrics
    assert relative(metrics["agreement"]["max_abs_diff"], models["lstm"]) <= TS_TOLERANCE
    with pytest.raises(UserError, match="no aarch64 C benchmark: no int8 C benchmark: .*lstm"):
        bench(art, sshd.board(), {"runner": "c"})


def test_bench_without_a_board_runs_both_programs_here(built):
    metrics = bench(built, None, {"repeats": 1})
    assert metrics["board"] == "localhost" and metrics["runner"] == "torchscript"
    assert metrics["c"]["emulated"] == "qemu-aarch64"
    assert metrics["c"]["agreement"]["argmax_match"] == 1.0
    only_c = bench(built, None, {"repeats": 1, "runner": "c"})
    assert only_c["runner"] == "c" and only_c["runtime"] == "c99" and "torchscript" not in only_c


def test_the_artifact_is_uploaded_once_per_content(built, sshd):
    from explorer.targets import manifest
    from explorer.targets.rpi import deploy

    board = sshd.board(workdir=str(sshd.folder / "reuse"))
    with SshBoard(board) as pi:
        first = deploy(pi, built, manifest.read(built))
        again = deploy(pi, built, manifest.read(built))
    assert first[1] is True and again == (first[0], False)
    remote = Path(first[0])
    assert (remote / "c" / "bench").stat().st_mode & 0o111  # the executable bit survives SFTP
    assert not Path(first[0] + ".partial").exists()


def test_cli_bench_on_an_inventory_board(built, sshd, tmp_path, capsys):
    board = sshd.board()
    inventory = tmp_path / "boards.yaml"
    inventory.write_text(json.dumps({"boards": [json.loads(board.model_dump_json(exclude_none=True))]}))
    out = tmp_path / "m.json"
    assert main(["bench", "--target", "rpi", str(built), "--board", "pi-sim", "--inventory", str(inventory),
                 "--repeats", "1", "-o", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["board"] == "pi-sim" and metrics["c"]["agreement"]["argmax_match"] == 1.0


# ---------------------------------------------------------------------------- host keys and links


def test_a_changed_host_key_is_refused_naming_the_known_hosts_line(built, sshd, tmp_path, capsys):
    impostor = keygen(tmp_path / "impostor", "impostor")
    known = tmp_path / "known_hosts"
    known.write_text("# lab boards\n" + known_hosts_line(sshd.port, Path(f"{impostor}.pub")))
    board = sshd.board(known_hosts=str(known))
    with pytest.raises(BoardError) as caught:
        bench(built, board, {"repeats": 1})
    message = str(caught.value)
    assert "host key changed" in message and f"{known}:2" in message and "refusing to connect" in message
    assert "SHA256:" in message and "\n" not in message
    assert known.read_text().count("\n") == 2  # never rewritten

    inventory = tmp_path / "boards.yaml"
    inventory.write_text(json.dumps({"boards": [json.loads(board.model_dump_json(exclude_none=True))]}))
    assert main(["bench", str(built), "--board", "pi-sim", "--inventory", str(inventory)]) == 1
    err = capsys.readouterr().err
    assert "host key changed" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unknown_host_key_is_refused_and_never_added(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(BoardError, match=r"host key unknown: \[127\.0\.0\.1\]:\d+ is not in .*known_hosts "
                                         r"\(the board offers ssh-ed25519 SHA256:.*never added automatically"):
        SshBoard(sshd.board(known_hosts=str(known))).connect()
    assert known.read_text() == ""
    with pytest.raises(BoardError, match="known_hosts file .* does not exist"):
        SshBoard(sshd.board(known_hosts=str(tmp_path / "missing"))).connect()


def test_a_key_the_board_does_not_accept_fails_authentication(sshd, tmp_path):
    stranger = keygen(tmp_path / "stranger", "stranger")
    with pytest.raises(BoardError, match=f"authentication failed with key {stranger}"):
        SshBoard(sshd.board(identity_file=str(stranger))).connect()


def test_a_closed_port_fails_at_once():
    from .services import free_port
    from explorer.boards import Board

    board = Board(name="off", kind="rpi-ssh", host="127.0.0.1", port=free_port(), user="pi", known_hosts="/dev/null")
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"off \(pi@127\.0\.0\.1:\d+\): connection refused"):
        SshBoard(board).connect()
    assert time.monotonic() - start < 3


def test_a_port_that_never_speaks_ssh_fails_within_the_connect_timeout():
    from explorer.boards import Board

    with socket.socket() as listener:  # accepts, then says nothing: a hung board or a wrong port
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        board = Board(name="mute", kind="rpi-ssh", host="127.0.0.1", port=listener.getsockname()[1], user="pi",
                      known_hosts="/dev/null")
        start = time.monotonic()
        with pytest.raises(BoardError, match="did not answer within 1 s"):
            SshBoard(board, connect_timeout=1.0).connect()
        assert time.monotonic() - start < 4


def _runner_command(remote: str, repeats: int) -> str:
    return f"cd {remote} && {sys.executable} torchscript_runner.py model.ts samples.npz {repeats}"


def test_sshd_killed_mid_measurement_is_a_board_error_in_bounded_time(built, own_sshd):
    from explorer.targets import manifest
    from explorer.targets.rpi import deploy

    with SshBoard(own_sshd.board()) as pi:
        remote, _ = deploy(pi, built, manifest.read(built))
        run = pi.run(_runner_command(remote, 4000), timeout=30)  # seconds per sample: a long measurement
        run.expect_ready()
        assert run.next_event()["event"] == "result"
        own_sshd.kill()  # the board loses power: sshd and everything it started die
        start = time.monotonic()
        with pytest.raises(BoardError, match="connection to pi-sim .* lost while running"):
            run.results(8)
        assert time.monotonic() - start < 10


def test_a_hung_board_times_out_and_the_link_is_given_up(built, own_sshd):
    from explorer.targets import manifest
    from explorer.targets.rpi import deploy

    start = None
    with SshBoard(own_sshd.board()) as pi:
        remote, _ = deploy(pi, built, manifest.read(built))
        run = pi.run(_runner_command(remote, 4000), timeout=60)  # importing torch may be slow on a busy CI
        run.expect_ready()
        run.timeout = 3.0
        own_sshd.signal_all(signal.SIGSTOP)  # the board freezes mid-measurement, its TCP link stays up
        start = time.monotonic()
        with pytest.raises(BoardError, match=r"no result \d of 8 within 3 s \(board silent or hung\)"):
            run.results(8)
        run.abort()  # tries to stop the program by id; the frozen board cannot answer, bounded anyway
    assert time.monotonic() - start < 12
    own_sshd.signal_all(signal.SIGCONT)


def test_a_failing_program_reports_its_exit_code_and_stderr(sshd):
    with SshBoard(sshd.board()) as pi:
        with pytest.raises(BoardError, match=r"failed with exit code 3 \(stderr: model.ts is missing\)"):
            run_remote(pi, f"{sys.executable} -c \"import sys; sys.stderr.write('model.ts is missing\\n'); "
                           "sys.exit(3)\"", 8, timeout=10)


def test_a_program_the_host_gives_up_on_is_stopped_on_the_board(sshd):
    marker = "explorer-hang-marker"
    program = f"import json, time; print(json.dumps({{'event': 'ready'}}), flush=True); time.sleep(60)  # {marker}"
    with SshBoard(sshd.board()) as pi:
        run = pi.run(f"{sys.executable} -c {json.dumps(program)}", timeout=60)
        run.expect_ready()
        run.timeout = 1.0
        with pytest.raises(BoardError, match="no result 0 of 8 within 1 s"):
            run.results(8)
        run.abort()  # what run_remote does when it gives up

    def leftovers() -> list[int]:  # anywhere: a program orphaned by a closed channel leaves sshd's tree
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                    found.append(int(entry.name))
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 5
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == []


def test_native_build_is_the_toolchain_script_and_reproducible(built, tmp_path, monkeypatch):
    """``toolchains/rpi/build.sh`` (what the Docker image runs) and the engine's own copy of its
    command (for an engine installed without the toolchains folder) give the same bytes."""
    from explorer.targets.rpi import cross_compile
    from explorer.targets.toolchain import toolchains_root

    assert (toolchains_root() / "rpi" / "build.sh").is_file()
    expected = json.loads((built / "manifest.json").read_text())["build"]["sha256"]
    copy = tmp_path / "art"
    shutil.copytree(built / "c", copy / "c")
    (copy / "c" / "bench").unlink()
    monkeypatch.setenv("EXPLORER_TOOLCHAINS", str(tmp_path / "no-toolchains"))
    binary, compiler = cross_compile(copy, "native")
    assert sha256(binary) == expected and compiler.startswith("aarch64-linux-gnu-gcc ")


@pytest.mark.slow
def test_docker_build_gives_the_native_binary(built, tmp_path, docker):
    """The pinned rpi image (built once, then reused) compiles the same artifact to the same bytes."""
    art = tmp_path / "art"
    shutil.copytree(built, art)
    before = (art / "c" / "bench").stat().st_mtime_ns
    facts = build(art, "docker")["build"]
    assert (art / "c" / "bench").stat().st_mtime_ns != before  # written again, inside the image
    assert facts["toolchain"] == "docker"
    assert facts["sha256"] == json.loads((built / "manifest.json").read_text())["build"]["sha256"]
    assert facts["compiler"].startswith("aarch64-linux-gnu-gcc 12.2")
