"""The self-hosted runner kit in runners/ (a symlink to the experiment repo's runners/ folder).

- the example inventory validates with the engine and with its JSON Schema;
- register.sh is shellcheck-clean, refuses 32-bit machines and missing permissions with one line,
  and its dry run prints every action with the tokens masked and changes nothing;
- runner-prepare.sh (before each job) empties the work folder and registers again through a
  loopback stand-in for GitHub's API, with the token in config.sh's environment only;
- take-out-of-service.sh runs the real `explorer boards check` and moves boards out of and back
  into service;
- the systemd units pass `systemd-analyze verify` (ExecStart paths pointed at existing files);
- the udev rules parse (`udevadm verify` where udev has it, else `udevadm test` in a private
  mount namespace, plus a key/operator parser).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from bakery import BIN, TEMPLATE, tool

RUNNERS = TEMPLATE / "runners"
EXAMPLE = RUNNERS / "boards.example.yaml"
REGISTER = RUNNERS / "register.sh"
SCRIPTS = ["register.sh", "runner-lib.sh", "runner-prepare.sh", "take-out-of-service.sh"]
UNITS = ["explorer-runner.service", "explorer-boards-check.service", "explorer-boards-check.timer"]
RULES = RUNNERS / "udev" / "99-explorer-pico.rules"
VENV = BIN.parent
TOKEN = "AABBCCDDEEFF0011223344556677"  # shaped like a registration token
API_TOKEN = "github_pat_11AAAATESTONLY0123456789"
EXAMPLE_LABELS = "rpi-ssh,rpi,rpi5,lab-a,pico-serial,pico,rp2350,simulated,fpga"
# What a real registration would touch on this machine: a dry run must leave it as it was.
SYSTEM_PATHS = ["/etc/explorer", "/opt/explorer", "/opt/actions-runner", "/var/lib/explorer",
                "/etc/systemd/system/explorer-runner.service", "/etc/systemd/system/explorer-boards-check.timer",
                "/etc/udev/rules.d/99-explorer-pico.rules"]


def required(name: str) -> str:
    """A system program the kit's tests need: missing means failing (the Makefile installs it)."""
    path = shutil.which(name)
    assert path, f"{name} is not installed (make install's Debian packages provide it)"
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without tokens or kit overrides, plus ``extra``."""
    drop = ("RUNNER_TOKEN", "GITHUB_API_TOKEN", "GITHUB_API_URL")
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("EXPLORER_", "RUNNER_")) and "proxy" not in k.lower()}
    env.update(extra)
    return env


def run(argv, env, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)


# ------------------------------------------------------------------ the layout

def test_runners_is_the_experiment_repos_folder_and_baked_executable(baked):
    assert RUNNERS.is_symlink() and RUNNERS.resolve() == (TEMPLATE / "{{cookiecutter.project}}" / "runners")
    repo = baked("default")
    for script in SCRIPTS:
        if script != "runner-lib.sh":  # sourced, not run
            assert os.access(RUNNERS / script, os.X_OK), script
            assert (repo / "runners" / script).stat().st_mode & stat.S_IXUSR, script
    assert (repo / "runners" / "udev" / RULES.name).read_bytes() == RULES.read_bytes()


# ------------------------------------------------------------------ the inventory

def test_example_inventory_validates_with_the_engine():
    from explorer.boards import load_inventory

    inventory = load_inventory(EXAMPLE)
    kinds = {(b.kind, b.simulator) for b in inventory.boards}
    assert kinds == {("rpi-ssh", None), ("pico-serial", None), ("pico-serial", "qemu-mps2-an505"), ("fpga", "ghdl")}
    pi = next(b for b in inventory.boards if b.kind == "rpi-ssh")
    assert pi.known_hosts and pi.identity_file and pi.host and pi.user and pi.labels
    pico = next(b for b in inventory.boards if b.kind == "pico-serial" and not b.simulator)
    assert pico.serial_number and not pico.device
    assert "# - name:" in EXAMPLE.read_text()  # the commented vendor FPGA board


def test_example_inventory_validates_with_its_json_schema(tmp_path):
    schema = tmp_path / "inventory.schema.json"
    done = run([tool("explorer"), "schema", "--inventory"], clean_env())
    assert done.returncode == 0, done.stderr
    schema.write_text(done.stdout)
    checked = run([tool("check-jsonschema"), "--schemafile", schema, EXAMPLE], clean_env())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the schema is not vacuous: a misspelt key fails it
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("    host: ", "    hots: ", 1))
    assert run([tool("check-jsonschema"), "--schemafile", schema, bad], clean_env()).returncode == 1


# ------------------------------------------------------------------ register.sh

def test_scripts_are_shellcheck_clean():
    done = run([required("shellcheck"), "-x", *SCRIPTS], clean_env(), cwd=RUNNERS)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def runner_tarball(tmp_path) -> Path:
    """A file named like the arm64 runner release; a dry run never unpacks it."""
    path = tmp_path / "actions-runner-linux-arm64-2.330.0.tar.gz"
    path.write_bytes(b"")
    return path


def register_args(tarball: Path, *extra: str) -> list[str]:
    return [REGISTER, "--dry-run", "--url", "https://github.com/lab/nas-exp", "--inventory", EXAMPLE,
            "--runner-tarball", tarball, "--name", "pi-lab-1", "--python", sys.executable, *extra]


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("register.sh: error: "), lines[0]
    assert "+ " not in done.stdout, "no action may be taken or shown after a refusal"
    return lines[0]


@pytest.mark.parametrize("machine", ["armv7l", "armv6l", "i686"])
def test_refuses_a_32_bit_machine(runner_tarball, machine):
    done = run([*register_args(runner_tarball), "--arch", machine], clean_env(RUNNER_TOKEN=TOKEN))
    assert done.returncode == 1
    line = one_error_line(done)
    assert f"32-bit system ({machine})" in line and "GitHub Actions no longer supports 32-bit ARM" in line


def test_refuses_a_64_bit_kernel_with_a_32_bit_user_space(runner_tarball):
    """32-bit Raspberry Pi OS on a Pi 4 boots an aarch64 kernel: getconf LONG_BIT tells."""
    env = clean_env(RUNNER_TOKEN=TOKEN, EXPLORER_UNAME_M="aarch64", EXPLORER_LONG_BIT="32")
    done = run(register_args(runner_tarball), env)
    assert done.returncode == 1
    assert "aarch64 kernel with a 32-bit user space" in one_error_line(done)


def test_refuses_an_unsupported_machine(runner_tarball):
    done = run([*register_args(runner_tarball), "--arch", "riscv64"], clean_env(RUNNER_TOKEN=TOKEN))
    assert done.returncode == 1 and "does not support this machine (riscv64)" in one_error_line(done)


def test_refuses_without_root_or_sudo(runner_tarball):
    """Not root and no sudo on PATH: one line, before anything else is looked at."""
    bin_dir = Path(tempfile.mkdtemp(prefix="explorer-nosudo-"))
    try:
        for folder in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(folder):
                continue
            for entry in os.scandir(folder):
                target = bin_dir / entry.name
                if entry.name != "sudo" and not target.exists() and os.access(entry.path, os.X_OK):
                    target.symlink_to(entry.path)
        bin_dir.chmod(0o755)
        argv = [*register_args(runner_tarball), "--arch", "aarch64"]
        if os.geteuid() == 0:  # become nobody for the run
            argv = [required("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        done = run(argv, clean_env(RUNNER_TOKEN=TOKEN, PATH=str(bin_dir), EXPLORER_LONG_BIT="64"))
    finally:
        shutil.rmtree(bin_dir)
    assert done.returncode == 1
    assert "must run as root" in one_error_line(done) and "sudo is not installed" in done.stderr


def snapshot(paths):
    return {p: (os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in paths}


def test_dry_run_prints_every_action_masks_tokens_and_changes_nothing(runner_tarball, tmp_path):
    api_file = tmp_path / "api-token"
    api_file.write_text(API_TOKEN + "\n")
    before = snapshot(SYSTEM_PATHS + [str(runner_tarball)])
    user_before = run(["getent", "passwd", "explorer"], clean_env()).stdout
    done = run([*register_args(runner_tarball, "--api-token-file", str(api_file)), "--arch", "aarch64"],
               clean_env(RUNNER_TOKEN=TOKEN, EXPLORER_LONG_BIT="64"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert TOKEN not in out + done.stderr and API_TOKEN not in out + done.stderr
    # each action as its words, unquoted (paths of the template hold braces, which get quoted)
    actions = [" ".join(shlex.split(line[2:])) for line in out.splitlines() if line.startswith("+ ")]
    expected = [
        "usermod --append --groups dialout,plugdev explorer" if user_before else "useradd --system",
        "install -m 0644 ",  # udev rules
        "udevadm control --reload",
        "install -m 0644 " + str(EXAMPLE.resolve()) + " /etc/explorer/boards.yaml",
        "python3 -m venv /opt/explorer/venv",
        "/opt/explorer/venv/bin/python -m pip install --quiet ",
        "write /etc/explorer/runner.env (mode 0644):",
        "write /etc/explorer/github-api-token (mode 0600, root only): ***",
        f"tar -xzf {runner_tarball} -C /opt/actions-runner",
        "chown -R explorer:explorer /opt/actions-runner",
        "cd /opt/actions-runner && ACTIONS_RUNNER_INPUT_TOKEN=*** runuser -u explorer -- ./config.sh --unattended "
        f"--url https://github.com/lab/nas-exp --name pi-lab-1 --work _work --replace --labels {EXAMPLE_LABELS} "
        "--ephemeral",
        "install -m 0644 ",  # units
        "systemctl daemon-reload",
        "systemctl enable --now explorer-boards-check.timer",
        "systemctl enable --now explorer-runner.service",
    ]
    position = 0
    for want in expected:  # in this order
        found = next((i for i in range(position, len(actions)) if actions[i].startswith(want)), None)
        assert found is not None, f"missing (in order) {want!r} in:\n" + "\n".join(actions)
        position = found + 1
    assert "labels: self-hosted, Linux, ARM64 (GitHub adds these) and from the inventory: " + EXAMPLE_LABELS in out
    for setting in ("RUNNER_EPHEMERAL=1", "RUNNER_USER=explorer", "EXPLORER_LEASE_DIR=/var/lib/explorer/leases",
                    "EXPLORER_API_TOKEN_FILE=/etc/explorer/github-api-token"):
        assert f"\n    {setting}\n" in out, setting
    assert out.rstrip().endswith("dry run done: nothing was changed")
    assert snapshot(SYSTEM_PATHS + [str(runner_tarball)]) == before
    assert run(["getent", "passwd", "explorer"], clean_env()).stdout == user_before


def test_dry_run_reads_the_token_from_a_file_and_keeps_other_paths(runner_tarball, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    runner_dir = tmp_path / "runner"
    args = [REGISTER, "--dry-run", "--url", "https://github.com/lab", "--inventory", EXAMPLE, "--token-file",
            token_file, "--runner-tarball", runner_tarball, "--runner-dir", runner_dir, "--python", sys.executable,
            "--arch", "aarch64", "--persistent", "--group", "lab-boards"]
    done = run(args, clean_env(EXPLORER_LONG_BIT="64"))
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert "no API token" not in done.stdout  # persistent: one registration serves every job
    config = next(line for line in done.stdout.splitlines() if "./config.sh" in line)
    assert "--url https://github.com/lab " in config and "--runnergroup lab-boards" in config
    assert "--ephemeral" not in config
    assert f"sed -i 's#/opt/actions-runner#{runner_dir}#g' /etc/systemd/system/explorer-runner.service" in done.stdout
    assert not runner_dir.exists()


def test_dry_run_before_the_engine_is_installed_shows_where_the_labels_go(runner_tarball):
    done = run([*register_args(runner_tarball), "--arch", "aarch64", "--python", shutil.which("false")],
               clean_env(RUNNER_TOKEN=TOKEN, EXPLORER_LONG_BIT="64"))
    assert done.returncode == 0, done.stderr
    assert "--labels '<labels from /etc/explorer/boards.yaml>'" in done.stdout


@pytest.mark.skipif(os.path.isdir("/run/systemd/system") or os.geteuid() != 0,
                    reason="a real run here would change this machine (systemd runs, or it would re-run with sudo)")
def test_a_real_run_without_systemd_stops_before_any_action(runner_tarball):
    """In a container (no systemd as init) the real run refuses before touching anything."""
    args = [a for a in register_args(runner_tarball) if a != "--dry-run"]
    before = snapshot(SYSTEM_PATHS)
    done = run([*args, "--arch", "aarch64"], clean_env(RUNNER_TOKEN=TOKEN, EXPLORER_LONG_BIT="64"))
    assert done.returncode == 1
    assert "systemd is not running on this machine" in one_error_line(done)
    assert snapshot(SYSTEM_PATHS) == before


@pytest.mark.parametrize("args, env, message", [
    ([], {}, "no registration token: set RUNNER_TOKEN or give --token-file"),
    (["--url", "https://github.com/a/b/c"], {"RUNNER_TOKEN": TOKEN}, "is not a repository or organization URL"),
    (["--url", "http://github.com/a/b"], {"RUNNER_TOKEN": TOKEN}, "is not a repository or organization URL"),
    ([], {"RUNNER_TOKEN": "abc def"}, "characters a GitHub token never has"),
    (["--inventory", "/nonexistent/boards.yaml"], {"RUNNER_TOKEN": TOKEN}, "no inventory at /nonexistent/boards.yaml"),
    (["--runner-tarball", "/nonexistent/actions-runner-linux-arm64-2.330.0.tar.gz"], {"RUNNER_TOKEN": TOKEN},
     "does not exist"),
    (["--bogus"], {"RUNNER_TOKEN": TOKEN}, "unknown option --bogus"),
])
def test_bad_input_is_one_clear_line(runner_tarball, args, env, message):
    done = run([*register_args(runner_tarball), "--arch", "aarch64", *args],
               clean_env(EXPLORER_LONG_BIT="64", **env))
    assert done.returncode in (1, 2)
    assert message in one_error_line(done)
    assert TOKEN not in done.stderr


def test_refuses_the_runner_of_another_architecture(tmp_path):
    x64 = tmp_path / "actions-runner-linux-x64-2.330.0.tar.gz"
    x64.write_bytes(b"")
    done = run([*register_args(x64), "--arch", "aarch64"], clean_env(RUNNER_TOKEN=TOKEN, EXPLORER_LONG_BIT="64"))
    assert done.returncode == 1
    assert "is not the runner for this aarch64 machine: take actions-runner-linux-arm64-" in one_error_line(done)


def test_help():
    done = run([REGISTER, "--help"], clean_env())
    assert done.returncode == 0 and "--dry-run" in done.stdout and "--api-token-file" in done.stdout


# ------------------------------------------------------------------ runner-prepare.sh

class FakeGitHub(BaseHTTPRequestHandler):
    """GitHub's registration-token endpoint on loopback: answers one token for the right bearer."""

    calls: list[tuple[str, str]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        type(self).calls.append((self.path, self.headers.get("Authorization", "")))
        if self.path != "/repos/lab/nas-exp/actions/runners/registration-token":
            self.send_response(404)
            body = b'{"message": "Not Found"}'
        elif self.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            self.send_response(401)
            body = b'{"message": "Bad credentials"}'
        else:
            self.send_response(201)
            body = json.dumps({"token": TOKEN, "expires_at": "2030-01-01T00:00:00Z"}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    FakeGitHub.calls = []
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# A stand-in for the runner's config.sh (which needs GitHub): it records its arguments and the
# token it got in its environment, and leaves the .runner file a registration leaves.
CONFIG_SH = """#!/usr/bin/env bash
printf '%s\\n' "$@" > config-args
printf '%s' "${ACTIONS_RUNNER_INPUT_TOKEN:-}" > config-token
echo '{"agentId": 7}' > .runner
"""


@pytest.fixture
def runner_dir(tmp_path) -> Path:
    folder = tmp_path / "actions-runner"
    (folder / "_work" / "repo" / ".git").mkdir(parents=True)
    (folder / "_work" / "repo" / "left-by-the-last-job").write_text("x")
    (folder / "config.sh").write_text(CONFIG_SH)
    (folder / "config.sh").chmod(0o755)
    return folder


def prepare_env(runner_dir: Path, tmp_path: Path, api: str, credential: bool = True) -> dict[str, str]:
    """runner.env as register.sh writes it; the service user is whoever runs the tests (as root,
    the script switches to it with runuser, as on a lab host)."""
    token_file = tmp_path / "github-api-token"
    if credential:
        token_file.write_text(API_TOKEN + "\n")
        token_file.chmod(0o600)
    out_of_service = tmp_path / "out-of-service"
    out_of_service.write_text("pico2-a\n")
    return clean_env(RUNNER_DIR=str(runner_dir), RUNNER_URL="https://github.com/lab/nas-exp", RUNNER_NAME="pi-lab-1",
                     RUNNER_USER=pwd.getpwuid(os.geteuid()).pw_name, RUNNER_EPHEMERAL="1",
                     EXPLORER_VENV=str(VENV), EXPLORER_INVENTORY=str(EXAMPLE),
                     EXPLORER_OUT_OF_SERVICE=str(out_of_service), GITHUB_API_URL=api,
                     EXPLORER_API_TOKEN_FILE=str(token_file) if credential else "")


def test_prepare_registers_again_after_a_job(runner_dir, tmp_path, github):
    done = run([RUNNERS / "runner-prepare.sh"], prepare_env(runner_dir, tmp_path, github))
    assert done.returncode == 0, done.stderr
    assert list((runner_dir / "_work").iterdir()) == []  # nothing of the last job is left
    assert FakeGitHub.calls == [("/repos/lab/nas-exp/actions/runners/registration-token", f"Bearer {API_TOKEN}")]
    args = (runner_dir / "config-args").read_text().splitlines()
    assert (runner_dir / "config-token").read_text() == TOKEN  # in the environment ...
    assert TOKEN not in args and API_TOKEN not in " ".join(args)  # ... never on the command line
    assert TOKEN not in done.stdout + done.stderr and API_TOKEN not in done.stdout + done.stderr
    labels = args[args.index("--labels") + 1]
    assert labels == "rpi-ssh,rpi,rpi5,lab-a,pico-serial,pico,simulated,fpga"  # pico2-a is out of service
    assert {"--unattended", "--replace", "--ephemeral"} <= set(args)
    assert args[args.index("--url") + 1] == "https://github.com/lab/nas-exp"
    assert args[args.index("--name") + 1] == "pi-lab-1"

    # registered and not used yet (the runner restarted while idle): no new registration
    (runner_dir / "config-args").unlink()
    again = run([RUNNERS / "runner-prepare.sh"], prepare_env(runner_dir, tmp_path, github))
    assert again.returncode == 0 and "registration present" in again.stdout
    assert not (runner_dir / "config-args").exists() and len(FakeGitHub.calls) == 1


def test_prepare_without_api_token_says_what_to_do(runner_dir, tmp_path, github):
    done = run([RUNNERS / "runner-prepare.sh"], prepare_env(runner_dir, tmp_path, github, credential=False))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "registration is used up and no API token is configured" in lines[0]
    assert FakeGitHub.calls == [] and not (runner_dir / "config-args").exists()


def test_prepare_reports_a_refused_api_token(runner_dir, tmp_path, github):
    env = prepare_env(runner_dir, tmp_path, github)
    Path(env["EXPLORER_API_TOKEN_FILE"]).write_text("github_pat_revoked0000\n")
    done = run([RUNNERS / "runner-prepare.sh"], env)
    assert done.returncode == 1
    assert "GitHub refused a registration token" in done.stderr and "Bad credentials" in done.stderr
    assert "github_pat_revoked0000" not in done.stderr + done.stdout
    assert not (runner_dir / "config-args").exists()


# ------------------------------------------------------------------ take-out-of-service.sh

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def test_health_timer_takes_boards_out_of_service_and_back(tmp_path):
    """The real `explorer boards check --record`: a dead SSH board stays out; an FPGA board whose
    simulator disappears from PATH goes out and comes back when it is there again."""
    ghdl = shutil.which("ghdl")
    if ghdl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ghdl is not installed; `make test` installs it", pytrace=False)
        pytest.skip("ghdl is not installed (run `make test` as root to install it)")
    inventory = tmp_path / "boards.yaml"
    inventory.write_text(yaml.safe_dump({"boards": [
        {"name": "pi-dead", "kind": "rpi-ssh", "host": "127.0.0.1", "port": closed_port(), "user": "explorer"},
        {"name": "fpga-sim", "kind": "fpga", "simulator": "ghdl"},
    ]}))
    listing, leases = tmp_path / "state" / "out-of-service", tmp_path / "state" / "leases"
    listing.parent.mkdir()
    no_ghdl = tmp_path / "bin"  # a PATH with what the script needs, without ghdl
    no_ghdl.mkdir()
    for name in ("bash", "env", "mktemp", "rm"):
        (no_ghdl / name).symlink_to(shutil.which(name))
    env = clean_env(EXPLORER_VENV=str(VENV), EXPLORER_INVENTORY=str(inventory), EXPLORER_LEASE_DIR=str(leases),
                    EXPLORER_OUT_OF_SERVICE=str(listing), EXPLORER_CHECK_TIMEOUT="5")
    script = RUNNERS / "take-out-of-service.sh"

    first = run([script], env)
    assert first.returncode == 1, first.stderr
    assert listing.read_text() == "pi-dead\n"
    assert "pi-dead taken out of service: reachable: connection refused" in first.stdout
    assert "1 of 2 boards in service" in first.stdout
    assert json.loads((leases / "pi-dead.health.json").read_text())["healthy"] is False  # what pools read

    second = run([script], {**env, "PATH": str(no_ghdl)})
    assert second.returncode == 1
    assert listing.read_text() == "fpga-sim\npi-dead\n"
    assert "fpga-sim taken out of service: simulator: ghdl not found on PATH" in second.stdout
    assert "pi-dead still out of service" in second.stdout

    third = run([script], env)
    assert third.returncode == 1 and listing.read_text() == "pi-dead\n"
    assert "fpga-sim back in service" in third.stdout
    assert json.loads((leases / "fpga-sim.health.json").read_text())["healthy"] is True

    # the next registration's labels leave the dead board's out
    labels = run([VENV / "bin" / "python", "-m", "explorer.boards.labels", inventory, "--exclude-file", listing], env)
    assert labels.stdout.strip() == "fpga"


def test_health_timer_fails_clearly_on_a_broken_inventory(tmp_path):
    inventory = tmp_path / "boards.yaml"
    inventory.write_text("boards:\n  - name: a\n    kind: fpga\n    simulatr: ghdl\n")
    listing = tmp_path / "out-of-service"
    listing.write_text("a\n")
    env = clean_env(EXPLORER_VENV=str(VENV), EXPLORER_INVENTORY=str(inventory),
                    EXPLORER_LEASE_DIR=str(tmp_path / "leases"), EXPLORER_OUT_OF_SERVICE=str(listing))
    done = run([RUNNERS / "take-out-of-service.sh"], env)
    assert done.returncode == 2
    assert f"{inventory}:4:5: error: unknown key 'simulatr'" in done.stderr
    assert "boards left as they were" in done.stderr and listing.read_text() == "a\n"


# ------------------------------------------------------------------ systemd

def unit_entries(path: Path) -> dict[str, dict[str, list[str]]]:
    """[Section] -> key -> values of a unit file (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def verifiable_units(folder: Path, broken: bool = False) -> list[Path]:
    """The units with their programs pointed at files that exist here: the kit's own scripts for
    /opt/explorer/bin/*, /bin/true for the runner's run.sh (the runner is not installed)."""
    out = []
    for name in UNITS:
        text = (RUNNERS / "systemd" / name).read_text()
        text = re.sub(r"/opt/explorer/bin/([\w.-]+)", lambda m: str(RUNNERS / m.group(1)), text)
        text = text.replace("/opt/actions-runner/run.sh", shutil.which("true"))
        if broken:
            text = text.replace("ProtectSystem=", "ProtectSytem=")
            text = text.replace("OnUnitActiveSec=5min", "OnUnitActiveSec=5 lightyears")
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def verify(units: list[Path]) -> subprocess.CompletedProcess:
    return run([required("systemd-analyze"), "verify", "--man=no", *units], clean_env(SYSTEMD_LOG_COLOR="0"))


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    done = verify(verifiable_units(tmp_path))
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_systemd_analyze_verify_sees_a_mistake(tmp_path):
    """The harness is not blind: a misspelt key and a bad time span are reported."""
    done = verify(verifiable_units(tmp_path, broken=True))
    assert "Unknown key 'ProtectSytem'" in done.stderr or "Unknown key name 'ProtectSytem'" in done.stderr
    assert "5 lightyears" in done.stderr


def test_runner_unit_is_hardened_and_restarts_for_the_next_job():
    service = unit_entries(RUNNERS / "systemd" / "explorer-runner.service")["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["User"] == "explorer" and set(one["SupplementaryGroups"].split()) == {"dialout", "plugdev"}
    assert one["NoNewPrivileges"] == "yes" and one["ProtectSystem"] == "strict" and one["PrivateTmp"] == "yes"
    assert one["ReadWritePaths"] == "/opt/actions-runner" and one["StateDirectory"] == "explorer"
    # as root (+): only root reads the API token; the script runs config.sh as the service user
    assert one["Restart"] == "always" and one["ExecStartPre"] == "+/opt/explorer/bin/runner-prepare.sh"
    assert one["ExecStart"] == "/opt/actions-runner/run.sh" and one["CapabilityBoundingSet"] == ""
    assert "PrivateDevices" not in one  # the boards' device nodes must stay visible
    check_unit = unit_entries(RUNNERS / "systemd" / "explorer-boards-check.service")
    check = {key: values[-1] for key, values in check_unit["Service"].items()}
    assert check["Type"] == "oneshot" and check["User"] == "explorer"
    assert check["ExecStart"] == "/opt/explorer/bin/take-out-of-service.sh"
    script = (RUNNERS / "take-out-of-service.sh").read_text()
    assert re.search(r'explorer" boards check --inventory "\$EXPLORER_INVENTORY" --json --record', script)
    timer = unit_entries(RUNNERS / "systemd" / "explorer-boards-check.timer")
    assert timer["Timer"]["OnUnitActiveSec"] == ["5min"] and timer["Install"]["WantedBy"] == ["timers.target"]


def test_runner_unit_exposure_is_low(tmp_path):
    """systemd's own rating of the sandbox (0 = locked down, 10 = none): at most 3 for both services."""
    for unit in verifiable_units(tmp_path)[:2]:
        done = run([required("systemd-analyze"), "security", "--offline=yes", "--no-pager", unit], clean_env())
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
        assert found, done.stdout[-500:] + done.stderr
        assert float(found.group(1)) <= 3.0, done.stdout


# ------------------------------------------------------------------ udev

# udev's keys: which operators each takes ("match" ==/!=, "assign" =/+=/-=/:=), and whether it
# carries {attribute}. From udev(7).
MATCH, ASSIGN = {"==", "!="}, {"=", "+=", "-=", ":="}
UDEV_KEYS = {
    "ACTION": (MATCH, False), "DEVPATH": (MATCH, False), "KERNEL": (MATCH, False), "KERNELS": (MATCH, False),
    "SUBSYSTEM": (MATCH, False), "SUBSYSTEMS": (MATCH, False), "DRIVER": (MATCH, False), "DRIVERS": (MATCH, False),
    "ATTRS": (MATCH, True), "TAGS": (MATCH, False), "RESULT": (MATCH, False), "CONST": (MATCH, True),
    "TEST": (MATCH, None), "PROGRAM": (MATCH | ASSIGN, False),
    "ATTR": (MATCH | {"="}, True), "SYSCTL": (MATCH | {"="}, True), "ENV": (MATCH | {"=", "+=", ":="}, True),
    "TAG": (MATCH | ASSIGN, False), "NAME": (MATCH | {"=", ":="}, False), "SYMLINK": (MATCH | ASSIGN, False),
    "OWNER": ({"=", ":="}, False), "GROUP": ({"=", ":="}, False), "MODE": ({"=", ":="}, False),
    "SECLABEL": ({"=", "+=", ":="}, True), "RUN": ({"=", "+=", ":="}, None), "LABEL": ({"="}, False),
    "GOTO": ({"="}, False), "IMPORT": (MATCH | {"="}, True), "OPTIONS": ({"=", "+=", ":="}, False),
}
PAIR = re.compile(r'(?P<key>[A-Z]+)(?:\{(?P<attr>[^{}]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"')


def parse_rules(text: str) -> list[tuple[int, list[tuple[str, str | None, str, str]]]]:
    """Each rule line as (line number, [(key, attr, op, value)]); a malformed line raises."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pairs, rest = [], line
        while rest:
            found = PAIR.match(rest)
            assert found, f"line {number}: cannot parse {rest!r}"
            pairs.append((found["key"], found["attr"], found["op"], found["value"]))
            rest = rest[found.end():]
            if rest:
                assert rest.startswith(", "), f"line {number}: expected ', ' before {rest!r}"
                rest = rest[2:]
        for key, attr, op, _ in pairs:
            assert key in UDEV_KEYS, f"line {number}: unknown key {key}"
            ops, needs_attr = UDEV_KEYS[key]
            assert op in ops, f"line {number}: {key} takes {sorted(ops)}, not {op}"
            if needs_attr is not None:
                wanted = "needs" if needs_attr else "takes no"
                assert (attr is not None) == needs_attr, f"line {number}: {key} {wanted} {{attribute}}"
        rules.append((number, pairs))
    return rules


def test_udev_rules_parse_and_name_picos_by_serial_for_the_groups():
    rules = parse_rules(RULES.read_text())
    labels = {v for _, pairs in rules for k, _, _, v in pairs if k == "LABEL"}
    assert all(v in labels for _, pairs in rules for k, _, _, v in pairs if k == "GOTO")
    serial = [pairs for _, pairs in rules if ("SYMLINK", None, "+=", "pico-$env{ID_SERIAL_SHORT}") in pairs]
    assert len(serial) == 1
    keys = {(k, a): (op, v) for k, a, op, v in serial[0]}
    assert keys[("SUBSYSTEM", None)] == ("==", "tty") and keys[("ATTRS", "idVendor")] == ("==", "2e8a")
    assert {"0009", "000a"} <= set(keys[("ATTRS", "idProduct")][1].split("|"))
    assert keys[("GROUP", None)][1] in {"dialout", "plugdev"} and keys[("MODE", None)][1] == "0660"
    assert keys[("ENV", "ID_SERIAL_SHORT")] == ("==", "?*")  # no /dev/pico- without a serial number
    products = {("ATTR", "idProduct"), ("ENV", "ID_MODEL_ID")}
    bootsel = " ".join(v for _, pairs in rules for k, a, _, v in pairs if (k, a) in products)
    assert "0003" in bootsel and "000f" in bootsel
    for _, pairs in rules:  # group access only: nothing for everyone, no programs run as root
        for key, _, _, value in pairs:
            assert key not in {"RUN", "PROGRAM", "OWNER"}
            if key == "MODE":
                assert int(value, 8) & 0o007 == 0, value


def test_udev_rule_parser_sees_mistakes():
    for bad in ['SUBSYSTEM=="tty", GROUP=="dialout"', 'SUBSYSTEM=="tty" MODE="0660"', 'ATTRS=="2e8a"',
                'SUBSYSTEM=="tty", FOO="bar"', 'SUBSYSTEM=="tty", ATTRS{idVendor}="2e8a"']:
        with pytest.raises(AssertionError):
            parse_rules(bad)


def udevadm_check(rules: Path, folder: Path) -> tuple[int, str]:
    """Exit code and output of udev's own parser on ``rules``.

    `udevadm verify` (systemd >= 254) checks a file directly. Older udev (Debian 12 has 252) only
    parses rules while processing a device, from the system folders: `udevadm test` then runs in
    a private mount namespace where /etc/udev/rules.d holds only this file, the packaged rules
    folders are empty, and /run and /dev are fresh tmpfs, so nothing on the host changes."""
    udevadm = required("udevadm")
    has_verify = run([udevadm, "verify", "--help"], clean_env()).returncode == 0
    if has_verify:
        done = run([udevadm, "verify", rules], clean_env())
        return done.returncode, done.stdout + done.stderr
    only, empty = folder / "rules.d", folder / "empty"
    only.mkdir()
    empty.mkdir()
    shutil.copy(rules, only / rules.name)
    binds = [f"mount --bind {only} /etc/udev/rules.d"]
    seen = set()
    for packaged in ("/usr/lib/udev/rules.d", "/lib/udev/rules.d", "/usr/local/lib/udev/rules.d"):
        if os.path.isdir(packaged) and os.path.realpath(packaged) not in seen:
            seen.add(os.path.realpath(packaged))
            binds.append(f"mount --bind {empty} {packaged}")
    script = " && ".join(["mount --make-rprivate /", *binds, "mount -t tmpfs tmpfs /run", "mount -t tmpfs tmpfs /dev",
                          f"exec {udevadm} test --action=add /sys/class/tty/tty"])
    namespace = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--mount"]
    done = run([*namespace, "sh", "-c", script], clean_env())
    output = done.stdout + done.stderr
    assert f"Reading rules file: /etc/udev/rules.d/{rules.name}" in output, f"udevadm test did not run:\n{output}"
    # Parse errors are the lines that name the file with a line number.
    problems = [line for line in output.splitlines() if f"{rules.name}:" in line]
    return (1 if problems else 0), "\n".join(problems)


def test_udev_rules_pass_udevs_own_parser(tmp_path):
    code, output = udevadm_check(RULES, tmp_path)
    assert code == 0, output


def test_udevs_parser_sees_mistakes(tmp_path):
    broken = tmp_path / "99-explorer-pico.rules"
    broken.write_text(RULES.read_text().replace('GROUP="dialout"', 'GROUP=="dialout"', 1))
    folder = tmp_path / "run"
    folder.mkdir()
    code, output = udevadm_check(broken, folder)
    assert code != 0 and "GROUP" in output, output
