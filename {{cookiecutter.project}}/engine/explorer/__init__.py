"""explorer: hardware-aware neural architecture search from YAML search spaces.

The engine reads a search space written in the YAML DSL (``explorer.space``), samples
architectures through Optuna, builds them into PyTorch models (``explorer.ops``) and
evaluates them for embedded targets.
"""

__version__ = "0.1.0"
