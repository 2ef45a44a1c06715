"""The pinned toolchains of ``toolchains/``: every Dockerfile's pins checked statically; the base
image built with debootstrap, the rpi image built with ``--network host`` and a generated C model
cross-compiled in it and natively (the same binary), run under qemu-aarch64 against PyTorch; the
mps2-an505 firmware built by ``toolchains/pico/build.sh`` natively and in the pico image's Debian
stage (the same load image)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.errors import UserError
from explorer.targets import toolchain
from explorer.targets.model import load_model_dir
from explorer.targets.sampled import sampled_model_dirs

from .services import unavailable

SPACES = Path(__file__).parent / "spaces"
ROOT = toolchain.toolchains_root()
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
HEX64 = re.compile(r"^[0-9a-f]{64}$")
QEMU_AARCH64 = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]


# ---------------------------------------------------------------- static pins


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def _args(path: Path) -> dict[str, str]:
    found = {}
    for name, rest in _instructions(path):
        if name == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            found[key.strip()] = _expand(value.strip(), found)
    return found


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def _apt_packages(command: str) -> list[str]:
    """The package arguments of every ``apt-get install`` in a RUN command."""
    packages = []
    for part in re.split(r"&&|;|\|\|", command):
        words = part.split()
        if "apt-get" in words and "install" in words:
            packages += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return packages


def _fetches(path: Path) -> list[dict[str, str]]:
    """Every ``fetch-source.sh NAME URL SHA256 DEST`` and ``fetch-git.sh NAME REPO COMMIT DEST`` call,
    ARGs expanded."""
    args, found = _args(path), []
    for name, rest in _instructions(path):
        if name != "RUN":
            continue
        for script, *call in re.findall(r"(fetch-source|fetch-git)\.sh\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", rest):
            source, location, pin, dest = (_expand(v.strip('"'), args) for v in call)
            prefix = re.sub(r"[${}\"]", "", call[1]).removesuffix("_URL").removesuffix("_REPO")
            found.append({"name": source, "kind": "git" if script == "fetch-git" else "archive",
                          "url": location, "pin": pin, "dest": dest,
                          "version": args.get(f"{prefix}_VERSION", "")})
    return found


def test_every_toolchain_has_a_dockerfile_build_script_and_readme():
    names = {p.parent.name for p in DOCKERFILES}
    assert {"rpi", "pico", "fpga"} <= names
    for name in names:
        folder = ROOT / name
        assert (folder / "build.sh").is_file() and os.access(folder / "build.sh", os.X_OK), name
    for name in ("base", "rpi", "pico"):
        assert (ROOT / name / "README.md").is_file(), name


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_from_names_a_tag_or_digest(dockerfile):
    args, stages, froms = {}, set(), 0
    for name, rest in _instructions(dockerfile):
        if name == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key.strip()] = value.strip()
        if name != "FROM":
            continue
        froms += 1
        words = rest.split()
        image = _expand(words[0], args)
        if len(words) >= 3 and words[1].upper() == "AS":
            if image in stages:
                stages.add(words[2])
                continue
            stages.add(words[2])
        elif image in stages:
            continue  # an earlier stage of this file
        assert "$" not in image, f"{dockerfile}: FROM {words[0]} has no default"
        ref = image.split("@", 1)
        if len(ref) == 2:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", ref[1]), image
        else:
            assert ":" in image.rsplit("/", 1)[-1], f"{dockerfile}: FROM {image} has no tag"
            assert not image.endswith(":latest"), f"{dockerfile}: FROM {image} uses latest"
    assert froms


def test_base_tag_is_the_one_every_dockerfile_starts_from():
    tag = subprocess.run(["bash", str(ROOT / "base" / "make-base-image.sh"), "--print-tag"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert re.fullmatch(r"explorer/debian:bookworm-12\.\d+", tag)
    for dockerfile in DOCKERFILES:
        assert _args(dockerfile).get("BASE_IMAGE") == tag, dockerfile


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_apt_package_has_an_exact_version(dockerfile):
    packages = [p for name, rest in _instructions(dockerfile) if name == "RUN" for p in _apt_packages(rest)]
    assert packages, f"{dockerfile} installs nothing from Debian"
    for package in packages:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+=[0-9][0-9A-Za-z.+~:-]*", package), \
            f"{dockerfile.parent.name}: {package} is not pinned with =version"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_downloads_go_through_the_checksum_and_pip_is_pinned(dockerfile):
    for name, rest in _instructions(dockerfile):
        if name != "RUN":
            continue
        for part in re.split(r"&&|;", rest):
            words = part.split()
            if words and words[0] in ("curl", "wget", "git"):
                pytest.fail(f"{dockerfile.parent.name}: {part.strip()} downloads without fetch-source.sh")
            if "pip" in " ".join(words[:3]) and "install" in words:
                for req in words[words.index("install") + 1:]:
                    assert req.startswith("-") or "==" in req, f"{dockerfile.parent.name}: pip {req} is not =="


PICO_SOURCES = {s["name"]: s for s in _fetches(ROOT / "pico" / "Dockerfile")}
HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.mark.parametrize("name", sorted(PICO_SOURCES))
def test_pico_sources_are_pinned_by_checksum_or_full_commit(name):
    """Each source is a tag archive with its sha256 or a git commit named by its full SHA (git checks
    every object against it); never a branch, never an abbreviated commit."""
    source = PICO_SOURCES[name]
    assert source["url"].startswith("https://github.com/") and "$" not in source["url"]
    assert source["version"] and source["version"] not in ("master", "main", "HEAD", "latest")
    if source["kind"] == "archive":
        assert source["version"] in source["url"], "the URL names the pinned tag or commit"
        assert HEX64.match(source["pin"]), f"{name}: sha256 {source['pin']!r}"
    else:
        assert source["url"].endswith(".git")
        assert HEX40.match(source["pin"]), f"{name}: commit {source['pin']!r} is not a full SHA"
        if re.fullmatch(r"[0-9a-f]{7,39}", source["version"]):
            assert source["pin"].startswith(source["version"]), "the label and the commit disagree"


def test_pico_tinyusb_is_the_commit_pico_sdk_pins():
    """The image refuses a pico-sdk whose MODULE.bazel names another TinyUSB commit than the pin."""
    text = (ROOT / "pico" / "Dockerfile").read_text()
    assert 'grep -q "commit = \\"${TINYUSB_COMMIT}\\"" /opt/pico-sdk/MODULE.bazel' in text
    assert PICO_SOURCES["tinyusb"]["kind"] == "git"


def test_pico_image_has_sdk_tinyusb_picotool_and_tflm():
    assert set(PICO_SOURCES) == {"pico-sdk", "tinyusb", "picotool", "tflite-micro"}
    assert re.fullmatch(r"2\.\d+\.\d+", PICO_SOURCES["pico-sdk"]["version"])
    assert PICO_SOURCES["tinyusb"]["dest"] == "/opt/pico-sdk/lib/tinyusb"


def _tarball(folder: Path, name: str) -> Path:
    src = folder / f"{name}-1.0"
    src.mkdir(parents=True)
    (src / "hello.txt").write_text("pinned\n")
    archive = folder / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return archive


def test_fetch_source_unpacks_only_a_matching_checksum(tmp_path):
    """The Dockerfile's download step on a local file:// URL: right sha256 unpacks, wrong or missing refuses."""
    if shutil.which("curl") is None:
        unavailable("curl")
    script = ROOT / "pico" / "fetch-source.sh"
    archive = _tarball(tmp_path, "demo")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    url = archive.as_uri()

    ok = subprocess.run([str(script), "demo", url, sha, str(tmp_path / "ok")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "hello.txt").read_text() == "pinned\n"

    bad = subprocess.run([str(script), "demo", url, "0" * 64, str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode != 0 and "FAILED" in bad.stdout + bad.stderr
    assert not (tmp_path / "bad").exists()

    unpinned = subprocess.run([str(script), "demo", url, "UNPINNED", str(tmp_path / "none")], capture_output=True,
                              text=True)
    assert unpinned.returncode == 2 and "no sha256 pin" in unpinned.stderr


def _git(*args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_fetch_git_checks_out_only_the_full_pinned_commit(tmp_path):
    """The Dockerfile's git step on a local repo: an older commit by full SHA is checked out (no .git
    left); an unknown commit, an abbreviated one or a branch name is refused with one line."""
    if shutil.which("git") is None:
        unavailable("git")
    script = ROOT / "pico" / "fetch-git.sh"
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / "hello.txt").write_text("pinned\n")
    _git("add", "hello.txt", cwd=repo)
    _git("commit", "-qm", "pinned", cwd=repo)
    pinned = _git("rev-parse", "HEAD", cwd=repo)
    (repo / "hello.txt").write_text("later\n")
    _git("commit", "-qam", "later", cwd=repo)
    url = repo.as_uri()

    ok = subprocess.run([str(script), "demo", url, pinned, str(tmp_path / "ok")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "hello.txt").read_text() == "pinned\n"
    assert not (tmp_path / "ok" / ".git").exists()

    unknown = subprocess.run([str(script), "demo", url, "1" * 40, str(tmp_path / "unknown")], capture_output=True,
                             text=True)
    assert unknown.returncode == 3 and f"cannot fetch commit {'1' * 40}" in unknown.stderr
    for pin in (pinned[:7], "main", "UNPINNED"):
        refused = subprocess.run([str(script), "demo", url, pin, str(tmp_path / "refused")], capture_output=True,
                                 text=True)
        assert refused.returncode == 2 and refused.stderr.startswith("fetch-git: demo"), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert not (tmp_path / "refused").exists()


def test_base_script_refuses_a_mirror_of_another_point_release(tmp_path):
    """The tag names a point release; a mirror serving another one is refused before debootstrap runs."""
    _need("debootstrap", "curl")
    if os.geteuid() != 0:
        unavailable("root (debootstrap)")
    env = {**os.environ, "DEBIAN_POINT_RELEASE": "12.99", "EXPLORER_CACHE": str(tmp_path), "TMPDIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "base" / "make-base-image.sh")], capture_output=True, text=True,
                          env=env, timeout=300)
    if "serves bookworm" not in done.stderr:
        unavailable(f"the Debian mirror apt uses ({done.stderr.strip()[-200:]})")
    assert done.returncode == 4 and "the pin is 12.99" in done.stderr
    assert time.monotonic() - started < 60
    assert not list(tmp_path.glob("explorer-base.*")), "the temporary rootfs folder is removed"


# ---------------------------------------------------------------- image tags


def test_image_tag_follows_the_folder_contents(tmp_path, monkeypatch):
    copy = tmp_path / "toolchains"
    shutil.copytree(ROOT, copy, symlinks=True)
    monkeypatch.setenv("EXPLORER_TOOLCHAINS", str(copy))
    first = toolchain.image_tag("rpi")
    assert re.fullmatch(r"explorer/rpi-toolchain:[0-9a-f]{12}", first)
    assert toolchain.image_tag("rpi") == first
    (copy / "rpi" / "README.md").write_text("changed\n")
    second = toolchain.image_tag("rpi")
    assert second != first
    (copy / "base" / "make-base-image.sh").write_text((copy / "base" / "make-base-image.sh").read_text() + "\n")
    assert toolchain.image_tag("rpi") != second
    with pytest.raises(UserError, match="no toolchain 'nope'"):
        toolchain.image_tag("nope")


# ---------------------------------------------------------------- native builds


def _c_model(root: Path, space: str = "cgen_conv1d.yaml", dtype: str = "float32") -> tuple[Path, object]:
    from explorer.targets.cgen import REFLECTION, generate

    folder = sampled_model_dirs(SPACES / space, 1, root / "models", seed=5, samples=6, reflection=REFLECTION)[0]
    model = load_model_dir(folder)
    out = root / "c"
    generate(model, out, dtype)
    return out, model


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        unavailable(", ".join(missing))


def _firmware_copy(c_dir: Path) -> None:
    """What a pico artifact carries for an offline build: the protocol loop and the board layers."""
    from explorer.targets.mcu import FIRMWARE

    shutil.copytree(FIRMWARE, c_dir / "firmware")


def _load_image(elf: Path) -> bytes:
    """The bytes a board loads (paths of the build machine appear only in the ELF's symbol table)."""
    out = elf.with_suffix(".bin")
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(out)], check=True)
    return out.read_bytes()


def test_pico_build_script_matches_the_engine_firmware_build(tmp_path):
    """toolchains/pico/build.sh mps2 and explorer.targets.mcu.build_mps2 give the same load image."""
    from explorer.targets.mcu import build_mps2

    _need("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    c_dir, _ = _c_model(tmp_path)
    _firmware_copy(c_dir)
    done = toolchain.run_native("pico", c_dir, args=["mps2"])
    assert "firmware.elf" in done.stdout
    engine = build_mps2(c_dir, out=tmp_path / "engine" / "firmware.elf")
    assert _load_image(c_dir / "build" / "mps2-an505" / "firmware.elf") == _load_image(engine)


def test_pico_sdk_build_needs_the_sdk(tmp_path, monkeypatch):
    monkeypatch.delenv("PICO_SDK_PATH", raising=False)
    (tmp_path / "CMakeLists.txt").write_text("")
    with pytest.raises(toolchain.ToolchainError, match="PICO_SDK_PATH is not set"):
        toolchain.run_native("pico", tmp_path, args=["pico2"])


def test_rpi_build_script_refuses_a_folder_without_sources(tmp_path):
    _need("aarch64-linux-gnu-gcc")
    with pytest.raises(toolchain.ToolchainError, match="model.c missing"):
        toolchain.run_native("rpi", tmp_path)


# ---------------------------------------------------------------- Docker (slow tier)

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def base_image(docker):
    """The debootstrap base image (reused when the machine has it; building it takes about a minute)."""
    _need("debootstrap")
    started = time.monotonic()
    tag = toolchain.ensure_base()
    TIMINGS["base image (ensure)"] = time.monotonic() - started
    return tag


def _timed_image(name: str) -> str:
    started = time.monotonic()
    tag = toolchain.ensure_image(name)
    TIMINGS[f"{name} image (first ensure)"] = time.monotonic() - started
    started = time.monotonic()
    assert toolchain.ensure_image(name) == tag
    TIMINGS[f"{name} image (cached ensure)"] = cached = time.monotonic() - started
    assert cached < 5, f"a cached image took {cached:.1f} s"
    return tag


def _docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True)


@pytest.mark.slow
def test_base_image_is_the_pinned_debian(base_image):
    script = (ROOT / "base" / "make-base-image.sh").read_text()
    pinned = re.search(r"^ROOTFS_SHA256=([0-9a-f]{64})", script, re.M).group(1)
    layers = _docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", base_image).stdout
    assert f"sha256:{pinned}" in layers, "the debootstrap rootfs is not the recorded one"
    shown = _docker("run", "--rm", "--network", "none", base_image, "sh", "-c",
                    "cat /etc/debian_version; cat /etc/apt/sources.list").stdout.split("\n")
    assert shown[0] == base_image.rsplit("-", 1)[1]
    assert shown[1].startswith("deb ") and shown[1].endswith(" bookworm main")
    # Idempotent: a second run reuses the image and says so.
    again = subprocess.run(["bash", str(ROOT / "base" / "make-base-image.sh")], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "reusing" in again.stderr


@pytest.mark.slow
def test_rpi_image_cross_compiles_the_same_binary_as_native(base_image, tmp_path):
    """A generated C model built in the rpi image (offline, bind-mounted) and natively: byte-identical
    static aarch64 binaries, whose outputs under qemu-aarch64 match PyTorch."""
    from explorer.targets.cgen import run_posix

    _need("aarch64-linux-gnu-gcc", "qemu-aarch64")
    _timed_image("rpi")
    c_dir, model = _c_model(tmp_path)
    native_dir = tmp_path / "native"
    shutil.copytree(c_dir, native_dir)

    started = time.monotonic()
    in_image = toolchain.run_in_image("rpi", c_dir)
    TIMINGS["rpi build in image"] = time.monotonic() - started
    toolchain.run_native("rpi", native_dir)
    docker_binary, native_binary = c_dir / "bench-aarch64", native_dir / "bench-aarch64"
    assert docker_binary.read_bytes() == native_binary.read_bytes()
    assert in_image.stdout.split()[-1] == hashlib.sha256(docker_binary.read_bytes()).hexdigest()
    assert docker_binary.stat().st_uid == os.getuid()
    assert docker_binary.read_bytes()[18] == 0xB7  # EM_AARCH64

    results = run_posix(docker_binary, c_dir / "inputs.bin", exec_wrapper=QEMU_AARCH64, timeout=60)
    outputs = np.array([r["output"] for r in results])
    reference = model.samples.reference.reshape(len(outputs), -1)
    np.testing.assert_allclose(outputs, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_rpi_image_runs_offline(base_image, tmp_path):
    tag = _timed_image("rpi")
    probe = subprocess.run(["docker", "run", "--rm", "--network", "none", tag, "sh", "-c",
                            "cat /sys/class/net/*/operstate 2>/dev/null | sort -u; ls /sys/class/net"],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0
    assert probe.stdout.split()[-1] == "lo"  # only the loopback interface in the build container


@pytest.mark.slow
def test_pico_image_debian_stage_builds_the_same_firmware(base_image, tmp_path):
    """The pico image's Debian stage (every apt pin; the GitHub sources cannot be fetched here)
    builds the mps2-an505 firmware with build.sh, the same load image as the native build."""
    _need("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    tag = f"{toolchain.image_tag('pico')}-packages"
    started = time.monotonic()
    if not toolchain.image_exists(tag):
        _docker("build", "--network", "host", "--target", "packages", "--build-arg", f"BASE_IMAGE={base_image}",
                "-t", tag, str(ROOT / "pico"), timeout=1800)
    TIMINGS["pico packages stage"] = time.monotonic() - started
    c_dir, _ = _c_model(tmp_path, "cgen_mlp.yaml")
    _firmware_copy(c_dir)
    native_dir = tmp_path / "native"
    shutil.copytree(c_dir, native_dir)
    _docker("run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
            "-v", f"{c_dir}:/artifact", "-v", f"{ROOT / 'pico'}:/opt/explorer/toolchain:ro", tag,
            "/opt/explorer/toolchain/build.sh", "/artifact", "mps2")
    toolchain.run_native("pico", native_dir, args=["mps2"])
    elf = Path("build") / "mps2-an505" / "firmware.elf"
    assert (c_dir / elf).read_bytes() == (native_dir / elf).read_bytes()


@pytest.mark.slow
def test_fpga_image_has_the_pinned_ghdl(base_image):
    tag = _timed_image("fpga")
    inside = _docker("run", "--rm", "--network", "none", tag, "ghdl", "--version").stdout.splitlines()[0]
    assert inside.startswith("GHDL 2.0.0")
    if shutil.which("ghdl"):
        assert subprocess.run(["ghdl", "--version"], capture_output=True, text=True).stdout.splitlines()[0] == inside


def teardown_module(module):
    if TIMINGS:
        print("\ntoolchain timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))
