"""``boards.yaml``: the lab's boards with how to reach them and the labels jobs select them by.

One pydantic model is the format, its validation (located errors like the DSL's) and the JSON
Schema ``explorer schema --inventory`` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import load_config
from ..errors import UserError

Kind = Literal["rpi-ssh", "pico-serial", "fpga"]
TARGET_OF_KIND: dict[str, str] = {"rpi-ssh": "rpi", "pico-serial": "pico", "fpga": "fpga"}


class Board(BaseModel):
    """One board. SSH boards verify the host key against ``known_hosts`` (OpenSSH's default file
    when unset); serial boards are found by ``device`` or USB ``serial_number``; ``simulator``
    names the stand-in that replaces the hardware in tests (qemu-mps2-an505, ghdl)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Unique board name.")
    kind: Kind = Field(description="rpi-ssh | pico-serial | fpga")
    variant: str | None = Field(None, description="rpi4, rpi5, rp2040 (Pico 1), rp2350 (Pico 2), env5 ...")
    labels: list[str] = Field(default_factory=list, description="Matched to runner labels and targets.")
    host: str | None = Field(None, description="SSH host name or address (rpi-ssh).")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    user: str | None = Field(None, description="SSH user (rpi-ssh).")
    identity_file: str | None = Field(None, description="Private key file; default: the SSH agent and ~/.ssh keys.")
    known_hosts: str | None = Field(None, description="known_hosts file; default ~/.ssh/known_hosts as OpenSSH.")
    workdir: str = Field("explorer-bench", description="Remote folder (relative to the user's home) for artifacts.")
    python: str = Field("python3", description="Remote Python with torch, for the TorchScript runner.")
    exec_wrapper: list[str] = Field(default_factory=list,
                                    description="Prefix for native binaries, e.g. [qemu-aarch64, -L, /usr/aarch64-linux-gnu].")
    device: str | None = Field(None, description="Serial device (pico-serial), e.g. /dev/pico-E6614103.")
    serial_number: str | None = Field(None, description="USB serial number (pico-serial), when the device path moves.")
    simulator: Literal["qemu-mps2-an505", "ghdl"] | None = Field(None, description="Simulated stand-in.")
    timeout: float = Field(30.0, gt=0, description="Seconds one measurement may take before it fails.")

    @model_validator(mode="after")
    def _connection(self) -> Board:
        if self.kind == "rpi-ssh" and not (self.host and self.user):
            raise ValueError("an rpi-ssh board needs 'host' and 'user'")
        if self.kind == "pico-serial" and not (self.device or self.serial_number or self.simulator):
            raise ValueError("a pico-serial board needs 'device', 'serial_number' or 'simulator'")
        return self

    @property
    def target(self) -> str:
        return TARGET_OF_KIND[self.kind]


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    boards: list[Board] = Field(description="Every board of the lab.")

    @model_validator(mode="after")
    def _unique(self) -> Inventory:
        names = [b.name for b in self.boards]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"board name {duplicate!r} is used twice")
        return self


def load_inventory(path: Path) -> Inventory:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such inventory file", hint="copy runners/boards.example.yaml")
    return load_config(path, Inventory)[0]


def find_board(inventory: Inventory, name: str, path: Path | str = "inventory") -> Board:
    for board in inventory.boards:
        if board.name == name:
            return board
    from ..space.validate import did_you_mean

    names = [b.name for b in inventory.boards]
    raise UserError(f"{path}: no board named {name!r}", hint=did_you_mean(name, names) or f"boards: {', '.join(names)}")
