"""The study runner: staged evaluation, persistent resumable studies, results and reports."""

from .criteria import Criteria, hypervolume, pareto_mask
from .runner import Run, finished, load_study, make_run, run_search

__all__ = ["Criteria", "Run", "finished", "hypervolume", "load_study", "make_run", "pareto_mask", "run_search"]
