"""The simulated Pico 2: generated C models built for Cortex-M33 with arm-none-eabi-gcc, booted in
``qemu-system-arm -M mps2-an505`` and driven over the UART's pty with pyserial, exactly as a real
Pico on USB CDC. Outputs are compared with the host build of the same C and with PyTorch; the
instruction counter is checked against a loop of known length; silent, crashing and babbling
links end in a BoardError within a few seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest

from explorer.errors import UserError
from explorer.targets import mcu, qemu, serial_link
from explorer.targets.cgen import INT8_TOLERANCE, REFLECTION, generate
from explorer.targets.model import load_model_dir
from explorer.targets.protocol import BoardError
from explorer.targets.sampled import sampled_model_dirs

from .services import unavailable

SPACES = Path(__file__).parent / "spaces"
CASES = [("cgen_mlp.yaml", "float32"), ("cgen_conv1d.yaml", "float32"), ("cgen_conv2d.yaml", "float32"),
         ("cgen_adapters.yaml", "float32"), ("cgen_conv1d.yaml", "int8")]
# newlib's expf/tanhf/erff (firmware) and glibc's (host) may differ in the last bit; every other
# operation is the same IEEE float32 sequence (-ffp-contract=off on both sides).
LIBM_ULPS = 2


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "cc"):
        if shutil.which(tool) is None:
            unavailable(tool)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One sampled model per test space, its C sources generated per dtype: {(space, dtype): (model, src)}."""
    root = tmp_path_factory.mktemp("mcu-models")
    found = {}
    for space, dtype in CASES:
        folder = sampled_model_dirs(SPACES / space, 1, root / space, seed=7, samples=8, reflection=REFLECTION)[0]
        model = load_model_dir(folder)
        src = root / "c" / f"{Path(space).stem}-{dtype}"
        facts = generate(model, src, dtype)
        found[(space, dtype)] = (model, src, facts)
    return found


def _floats(results: list[dict]) -> np.ndarray:
    return np.array([r["output"] for r in results], dtype=np.float32)


def _ulps(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)).max())


def _host_run(binary: Path, x: np.ndarray) -> tuple[dict, list[dict]]:
    """The host build of the same protocol program, fed the same frames on stdin."""
    frames = b"HELLO\n" + b"".join(serial_link.encode_run(x))
    done = subprocess.run([str(binary)], input=frames, capture_output=True, timeout=30, check=True)
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert events[0]["event"] == "ready" and events[-1] == {"event": "done", "count": len(x)}
    return events[0], events[1:-1]


def _image(tmp_path: Path, main_c: str, name: str = "image.elf") -> Path:
    """A bare-metal image of the mps2-an505 start-up and board layer with a custom ``main``."""
    (tmp_path / "main.c").write_text(main_c)
    return mcu.compile_image([tmp_path / "main.c", mcu.FIRMWARE / "mps2_an505" / "board_mps2.c"], [mcu.FIRMWARE],
                             tmp_path / name)


SPIN_MODEL = {
    # model_invoke runs exactly 2 * input[0] loop instructions (subs, bne) plus a fixed overhead,
    # and traps (UsageFault -> HardFault) on an input below 1.
    "model.h": "#define MODEL_INPUT_SIZE 1\n#define MODEL_OUTPUT_SIZE 1\n#define MODEL_ARENA_BYTES 0\n"
               "#define MODEL_WEIGHT_BYTES 0\nint model_invoke(const float *input, float *output);\n",
    "model.c": '#include <stdint.h>\n#include "model.h"\n'
               "__attribute__((noinline)) static void spin(uint32_t n)\n"
               '{ __asm volatile(".syntax unified\\n1:\\tsubs %0, %0, #1\\n\\tbne 1b" : "+l"(n) : : "cc"); }\n'
               "int model_invoke(const float *input, float *output)\n"
               "{ if (input[0] < 1.0f) __builtin_trap(); spin((uint32_t)input[0]); output[0] = input[0]; return 0; }\n",
    "kernels.c": "typedef int no_kernels;\n",
}


@pytest.fixture(scope="module")
def spin_elf(tmp_path_factory):
    src = tmp_path_factory.mktemp("spin-model")
    for name, text in SPIN_MODEL.items():
        (src / name).write_text(text)
    return mcu.build_mps2(src)


@pytest.mark.parametrize("space,dtype", CASES)
def test_qemu_outputs_equal_host_build_and_pytorch(models, space, dtype, tmp_path):
    model, src, facts = models[(space, dtype)]
    elf = mcu.build_mps2(src, out=tmp_path / "mps2" / "firmware.elf")
    host = mcu.build_host(src, out=tmp_path / "host" / "firmware")
    started = time.monotonic()
    ready, results = qemu.run_mps2(elf, model.samples.x, timeout=10)
    assert time.monotonic() - started < 10
    assert ready["board"] == "mps2-an505" and ready["cost"] == "instructions" and ready["dtype"] == dtype
    assert (ready["input_size"], ready["output_size"]) == (facts["input_size"], facts["output_size"])
    assert ready["arena_bytes"] == facts["arena_bytes"]
    host_ready, host_results = _host_run(host, model.samples.x)
    assert host_ready["input_size"] == ready["input_size"]
    on_board, on_host = _floats(results), _floats(host_results)
    assert on_board.shape == (len(model.samples.x), facts["output_size"])
    assert _ulps(on_board, on_host) <= LIBM_ULPS
    reference = model.samples.reference.reshape(on_board.shape)
    if dtype == "float32":
        np.testing.assert_allclose(on_board, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    else:
        assert np.abs(on_board - reference).max() <= INT8_TOLERANCE * np.ptp(reference)
    assert all(isinstance(r["instructions"], int) and r["instructions"] > 0 for r in results)
    sizes = mcu.section_sizes(elf)
    assert sizes["flash_bytes"] > facts["weight_bytes"] and sizes["ram_bytes"] > facts["arena_bytes"]


def test_outputs_round_trip_every_float32(tmp_path):
    """The firmware's own float printer (no printf): 9 significant digits give back every bit."""
    src = tmp_path / "echo"
    src.mkdir()
    (src / "model.h").write_text("#define MODEL_INPUT_SIZE 64\n#define MODEL_OUTPUT_SIZE 64\n#define MODEL_ARENA_BYTES 0\n"
                                 "#define MODEL_WEIGHT_BYTES 0\nint model_invoke(const float *input, float *output);\n")
    (src / "model.c").write_text('#include "model.h"\nint model_invoke(const float *input, float *output)\n'
                                 "{ int i; for (i = 0; i < MODEL_INPUT_SIZE; ++i) output[i] = input[i]; return 0; }\n")
    (src / "kernels.c").write_text(SPIN_MODEL["kernels.c"])
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, (200, 64), dtype=np.uint64).astype(np.uint32)  # every exponent, subnormals
    x = bits.view(np.float32).copy()
    x[0, :12] = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-45, -1.4e-45, 1.17549435e-38, 3.4028235e38, 123456789.0, 1e-5, 1e9]
    x[1, :3] = [np.inf, -np.inf, np.nan]
    host = _host_run(mcu.build_host(src), x)[1]
    board = qemu.run_mps2(mcu.build_mps2(src), x[:4], timeout=10)[1]  # QEMU's UART is slow: a few
    for results, sent in ((host, x), (board, x[:4])):
        finite = np.isfinite(sent)
        printed = np.array([[np.nan if v is None else v for v in r["output"]] for r in results], dtype=np.float32)
        assert np.array_equal(printed[finite].view(np.uint32), sent[finite].view(np.uint32))
        assert all(v is None for r, row in zip(results, finite) for v, ok in zip(r["output"], row) if not ok)


def test_instruction_counts_are_exact_and_repeatable(spin_elf):
    x = np.array([[1000.0], [3000.0], [1000.0], [1.0]], dtype=np.float32)
    first = [r["instructions"] for r in qemu.run_mps2(spin_elf, x, timeout=10)[1]]
    second = [r["instructions"] for r in qemu.run_mps2(spin_elf, x, timeout=10)[1]]
    assert first == second  # another boot, the same counts
    assert first[0] == first[2]  # the same input, the same count
    assert first[1] - first[0] == 4000  # 2000 more rounds of the two-instruction loop, exactly
    assert 0 < first[3] < first[0]


def test_counts_of_a_generated_model_repeat_and_m0plus_code_runs_too(models, tmp_path):
    model, src, _ = models[("cgen_conv1d.yaml", "float32")]
    x = np.concatenate([model.samples.x[:4], model.samples.x[:4]])
    elf = mcu.build_mps2(src, out=tmp_path / "m33.elf")
    m33 = qemu.run_mps2(elf, x, timeout=10)[1]
    again = qemu.run_mps2(elf, x, timeout=10)[1]
    counts = [r["instructions"] for r in m33]
    assert counts == [r["instructions"] for r in again] and counts[:4] == counts[4:]
    # Armv6-M code (the Pico 1's instruction set, soft float) on the same machine: same outputs,
    # many more instructions.
    m0 = qemu.run_mps2(mcu.build_mps2(src, out=tmp_path / "m0.elf", cpu="cortex-m0plus"), x, timeout=20)[1]
    assert _ulps(_floats(m0), _floats(m33)) <= LIBM_ULPS
    assert min(r["instructions"] for r in m0) > 2 * max(counts)


def test_board_rejects_bad_frames_and_resynchronises(spin_elf):
    with qemu.QemuBoard(spin_elf, timeout=5) as board:
        link = board.link
        assert link.hello()["input_size"] == 1
        for frame, message in ((b"FLY\n", "unknown command"), (b"I AAAA\n", "too short"),
                               (b"I AAAAAAAA\n", "too many bytes"), (b"I ??\n", "foreign character"),
                               (b"I AACAPw==\n", "outside a RUN")):
            link._write(frame)
            with pytest.raises(BoardError, match=message):
                link.stream.next_event()
        link.ready = None
        ready, results = board.run(np.array([[10.0], [20.0]], dtype=np.float32))
        assert ready["event"] == "ready" and [r["output"] for r in results] == [[10], [20]]


def test_cpu_fault_is_reported(spin_elf):
    started = time.monotonic()
    with pytest.raises(BoardError, match="CPU fault"):
        qemu.run_mps2(spin_elf, np.array([[5.0], [-1.0]], dtype=np.float32), timeout=5)
    assert time.monotonic() - started < 5


def test_silent_firmware_gives_board_error_in_bounded_time(tmp_path):
    elf = _image(tmp_path, '#include "board.h"\nint main(void) { for (;;) ; }\n')
    started = time.monotonic()
    with pytest.raises(BoardError, match="no ready line within 2 s"):
        qemu.run_mps2(elf, np.zeros((1, 4), np.float32), timeout=2)
    assert time.monotonic() - started < 5


def test_wrong_elf_gives_board_error_with_qemus_reason(tmp_path):
    started = time.monotonic()
    with pytest.raises(BoardError, match="QEMU exited"):
        qemu.run_mps2(Path(shutil.which("cc")), np.zeros((1, 4), np.float32), timeout=5)  # an x86-64 ELF
    assert time.monotonic() - started < 5


def test_qemu_without_icount_is_refused(spin_elf):
    class NoIcount(qemu.QemuBoard):
        def argv(self, exe):
            argv = super().argv(exe)
            at = argv.index("-icount")
            return argv[:at] + argv[at + 2:]

    with NoIcount(spin_elf, timeout=5) as board, pytest.raises(BoardError, match="icount shift=8"):
        board.run(np.ones((1, 1), np.float32))


class _Babbler:
    """A pty whose far end writes ``chunk`` over and over (a wrong device, a crashed board)."""

    def __init__(self, chunk: bytes):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a serial device, not a terminal: no echo, no line editing
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._babble, args=(chunk,), daemon=True)
        self.thread.start()

    def _babble(self, chunk: bytes) -> None:
        while not self.stop.is_set():
            try:
                os.write(self.master, chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("chunk", [bytes(range(256)), b"lorem ipsum dolor\n", b"x" * 512],
                         ids=["binary", "text-lines", "no-newline"])
def test_babbling_pty_gives_board_error_quickly(chunk):
    babbler = _Babbler(chunk)
    try:
        started = time.monotonic()
        with pytest.raises(BoardError, match="garbage"):
            with serial_link.SerialLink(babbler.path, timeout=5) as link:
                link.run(np.zeros((2, 3), np.float32))
        assert time.monotonic() - started < 2
    finally:
        babbler.close()


def test_silent_pty_times_out():
    master, slave = os.openpty()
    try:
        started = time.monotonic()
        with pytest.raises(BoardError, match="no ready line within 1 s"):
            with serial_link.SerialLink(os.ttyname(slave), timeout=1) as link:
                link.hello()
        assert time.monotonic() - started < 3
    finally:
        os.close(master)
        os.close(slave)


def test_link_errors_are_one_line(tmp_path, spin_elf):
    with pytest.raises(BoardError, match="cannot open serial port"):
        serial_link.SerialLink(str(tmp_path / "ttyNONE"), timeout=1)
    with pytest.raises(BoardError, match="no serial port with USB serial number"):
        serial_link.find_port("E6614103FFFFFFFF")
    with pytest.raises(UserError, match="not found on PATH"):
        qemu.QemuBoard(spin_elf, qemu="qemu-system-none").start()
    with pytest.raises(UserError, match="no generated C model"):
        mcu.build_mps2(tmp_path)
    with qemu.QemuBoard(spin_elf, timeout=5) as board, pytest.raises(BoardError, match="takes 1 inputs"):
        board.run(np.zeros((1, 3), np.float32))


def test_compile_for_pico_limits(models, tmp_path):
    _, src, facts = models[("cgen_conv2d.yaml", "float32")]
    for cpu, chip in (("cortex-m0plus", "rp2040"), ("cortex-m33", "rp2350")):
        found = mcu.compile_for(src, cpu, out=tmp_path / cpu / "firmware.elf")
        assert found["chip"] == chip and found["fits"] and not found["problems"]
        assert found["flash_bytes"] > facts["weight_bytes"]
        assert found["ram_bytes"] >= facts["arena_bytes"] + mcu.STACK_BYTES
    # 2.4 MB of weights and a 400 KB arena: too big for the RP2040 on both counts, fine for the RP2350.
    big = tmp_path / "big"
    big.mkdir()
    (big / "model.h").write_text(SPIN_MODEL["model.h"])
    (big / "kernels.c").write_text(SPIN_MODEL["kernels.c"])
    (big / "model.c").write_text(
        '#include "model.h"\nstatic const float weights[600000] = {1.0f};\nstatic float arena[100000];\n'
        "int model_invoke(const float *input, float *output)\n"
        "{ arena[(int)input[0]] = weights[(int)input[0]]; output[0] = arena[1]; return 0; }\n")
    pico1 = mcu.compile_for(big, "cortex-m0plus")
    assert not pico1["fits"] and len(pico1["problems"]) == 2
    assert pico1["flash_bytes"] > 2_400_000 and pico1["ram_bytes"] > 400_000
    assert mcu.compile_for(big, "cortex-m33")["fits"]
    with pytest.raises(UserError, match="unknown cpu"):
        mcu.compile_for(big, "cortex-m4")


def test_flashing_errors_are_clear(tmp_path, monkeypatch):
    uf2 = tmp_path / "firmware.uf2"
    uf2.write_bytes(b"UF2\n" * 128)
    monkeypatch.setenv("PATH", str(tmp_path))  # no picotool here
    with pytest.raises(UserError, match="picotool not found"):
        serial_link.flash_picotool(uf2)
    mounts = tmp_path / "mounts"
    drive = tmp_path / "drive"
    drive.mkdir()
    mounts.write_text(f"/dev/sda1 {drive} vfat rw 0 0\n")
    with pytest.raises(BoardError, match="no Pico BOOTSEL drive"):
        serial_link.flash_uf2_copy(uf2, mounts=mounts)
    with pytest.raises(BoardError, match="not a Pico BOOTSEL drive"):
        serial_link.flash_uf2_copy(uf2, mount=drive)
    with pytest.raises(UserError, match="cannot flash a .elf"):
        serial_link.flash_uf2_copy(tmp_path / "firmware.elf", mount=drive)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    assert serial_link.bootsel_drives(mounts) == [drive]
    copied = serial_link.flash_uf2_copy(uf2, mounts=mounts)
    assert copied.read_bytes() == uf2.read_bytes()


def test_pico_project_is_staged(models, tmp_path):
    _, src, _ = models[("cgen_mlp.yaml", "float32")]
    project = mcu.stage_pico_project(src, tmp_path / "pico")
    for name in ("CMakeLists.txt", "board_pico.c", "main_mcu.c", "board.h", "model.c", "model.h", "kernels.c"):
        assert (project / name).is_file(), name
    cmake = (project / "CMakeLists.txt").read_text()
    assert "pico_enable_stdio_usb(explorer_model 1)" in cmake and "main_mcu.c board_pico.c model.c kernels.c" in cmake
