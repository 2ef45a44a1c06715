"""Runner labels from the board inventory (``explorer.boards.labels``), as register.sh and the
runner's start script call it: on the kit's example inventory and on edge cases."""

import subprocess
import sys
from pathlib import Path

import pytest

from explorer.boards import Inventory, load_inventory
from explorer.boards.labels import board_labels, main, read_names, runner_labels
from explorer.errors import UserError

EXAMPLE = Path(__file__).resolve().parents[2] / "runners" / "boards.example.yaml"


def inventory(*boards: dict) -> Inventory:
    return Inventory.model_validate({"boards": list(boards)})


def test_example_inventory_labels():
    labels = board_labels(load_inventory(EXAMPLE))
    # kind, target, own labels per board, first occurrence first, no duplicates
    assert labels == ["rpi-ssh", "rpi", "rpi5", "lab-a", "pico-serial", "pico", "rp2350", "simulated", "fpga"]


def test_runner_labels_add_githubs_defaults_for_the_machine():
    inv = load_inventory(EXAMPLE)
    assert runner_labels(inv, "aarch64")[:3] == ["self-hosted", "Linux", "ARM64"]
    assert runner_labels(inv, "x86_64")[:3] == ["self-hosted", "Linux", "X64"]
    for machine in ("armv7l", "armv6l", "i686"):
        with pytest.raises(UserError, match="no GitHub runner label"):
            runner_labels(inv, machine)


def test_excluded_boards_take_only_their_own_labels_away():
    inv = load_inventory(EXAMPLE)
    labels = board_labels(inv, exclude=["pico2-a"])
    assert "rp2350" not in labels  # only pico2-a brought it
    assert {"pico", "pico-serial", "lab-a"} <= set(labels)  # pico-sim and pi5-a still bring these
    assert board_labels(inv, exclude=[b.name for b in inv.boards]) == []


def test_case_insensitive_duplicates_and_githubs_own_labels_are_dropped():
    inv = inventory(
        {"name": "a", "kind": "fpga", "simulator": "ghdl", "labels": ["Lab", "self-hosted", "ARM64", "linux"]},
        {"name": "b", "kind": "fpga", "simulator": "ghdl", "labels": ["lab", "FPGA"]},
    )
    assert board_labels(inv) == ["fpga", "Lab"]


@pytest.mark.parametrize("bad", ["two words", "a,b", "", "-dash-first", "x" * 101])
def test_a_label_config_sh_cannot_take_is_one_clear_error(bad):
    inv = inventory({"name": "a", "kind": "fpga", "simulator": "ghdl", "labels": [bad]})
    with pytest.raises(UserError) as caught:
        board_labels(inv)
    assert len(caught.value.lines()) == 1 and "cannot be a runner label" in caught.value.lines()[0]


def test_out_of_service_file(tmp_path):
    listing = tmp_path / "out-of-service"
    assert read_names(listing) == []  # no file yet: nothing out of service
    listing.write_text("pico2-a\n\n# a comment\npi5-a  # broken SD card\n")
    assert read_names(listing) == ["pico2-a", "pi5-a"]


def test_command_line(tmp_path, capsys):
    listing = tmp_path / "out"
    listing.write_text("pico2-a\n")
    assert main([str(EXAMPLE), "--exclude-file", str(listing), "--exclude", "fpga-sim"]) == 0
    assert capsys.readouterr().out == "rpi-ssh,rpi,rpi5,lab-a,pico-serial,pico,simulated\n"
    assert main([str(EXAMPLE), "--all", "--machine", "aarch64"]) == 0
    assert capsys.readouterr().out.startswith("self-hosted,Linux,ARM64,rpi-ssh,")


def test_module_run_reports_a_bad_inventory_in_one_located_line(tmp_path):
    bad = tmp_path / "boards.yaml"
    bad.write_text("boards:\n  - name: a\n    kind: pico-serial\n    labelz: [x]\n")
    done = subprocess.run([sys.executable, "-m", "explorer.boards.labels", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    expected = f"{bad}:4:5: error: unknown key 'labelz' (hint: did you mean 'labels'?)"
    assert done.stderr.strip().splitlines() == [expected]
