"""The lab's boards: the inventory file (``inventory``), lease locks (``lease``), the pool that hands
out free healthy boards (``pool``) and ``explorer boards check`` (``check``); import those modules
directly (they pull in the SSH and serial transports, the inventory alone stays light)."""

from .inventory import Board, Inventory, find_board, load_inventory

__all__ = ["Board", "Inventory", "find_board", "load_inventory"]
