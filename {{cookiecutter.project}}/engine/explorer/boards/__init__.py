"""The lab's boards: the inventory file, and (later) pools, leases and health checks."""

from .inventory import Board, Inventory, find_board, load_inventory

__all__ = ["Board", "Inventory", "find_board", "load_inventory"]
