"""The search-space DSL: parse and validate YAML with locations, count, sample into an Architecture.

Importing this package does not import torch or Optuna; ``explorer.build`` turns an
Architecture into a model.
"""

from .architecture import Architecture, Layer
from .count import Size, space_size
from .model import Block, SearchSpace
from .sample import Candidate, sample
from .validate import check_file, load_space

__all__ = ["Architecture", "Block", "Candidate", "Layer", "SearchSpace", "Size", "check_file", "load_space",
           "sample", "space_size"]
