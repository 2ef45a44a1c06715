"""A dependency-free C99 model generator (float32 and int8).

``generate(model, out, dtype)`` writes ``model.h``/``model.c`` (weights as ``static const``
arrays, one static activation arena planned from tensor liveness, so peak activation SRAM is
exactly ``MODEL_ARENA_BYTES``), the kernels and a POSIX benchmark. The same sources build for the
host, aarch64 and Cortex-M (no malloc, no stdio outside ``bench_posix.c``; only libm).

int8 (post-training, calibrated on the model folder's samples; scheme in ``quant.py``): the
documented tolerance against PyTorch float32 is a per-model max absolute difference of at most
``INT8_TOLERANCE`` (5 %) of the range of PyTorch's outputs (max - min over the samples) and argmax
agreement >= 0.9 over the samples of a space. Measured on 32 models sampled from the four int8
test spaces (32 samples each): max 2.8 %, median 0.8 % of the range; argmax agreement 0.99 on
average, 0.94 for the worst model (random weights give near-ties). float32 agrees with PyTorch to
about 1e-6 of the output range (only the summation order differs). ``tests/test_cgen.py`` checks both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..base import OpSupport, Reflection
from .lower import ACT_CODES, VIEW_OPS, Unsupported, lower
from .runner import compile_host, compile_kernels, run_posix

DTYPES = ("float32", "int8")
ACTIVATIONS = tuple(ACT_CODES)
INT8_TOLERANCE = 0.05  # max |int8 - float| relative to the output range, see the docstring

_conv = OpSupport(params={"activation": ACTIVATIONS})
_INT8_OPS = {
        "linear": OpSupport(params={"activation": ACTIVATIONS}),
        "conv1d": _conv, "conv2d": _conv, "dwsep_conv1d": _conv, "dwsep_conv2d": _conv,
        "maxpool": OpSupport(), "avgpool": OpSupport(), "global_avgpool": OpSupport(),
        "batchnorm": OpSupport(), "layernorm": OpSupport(), "activation": OpSupport(params={"op": ACTIVATIONS}),
        **{op: OpSupport() for op in sorted(VIEW_OPS)},
        "to_steps": OpSupport(), "to_channels": OpSupport(), "last_step": OpSupport(),
}
_RECURRENT = {op: OpSupport(note="float32 only (no int8 kernel)") for op in ("lstm", "gru")}
# Everything the generator runs in float32; int8 runs all of it except the recurrent layers.
REFLECTION = Reflection(ops={**_INT8_OPS, **_RECURRENT}, dtypes=DTYPES, recurrent=True,
                        notes="C99 kernels (float32, int8); lstm/gru float32 only")
REFLECTION_INT8 = Reflection(ops=dict(_INT8_OPS), dtypes=("int8",), recurrent=False,
                             notes="C99 int8 kernels; no recurrent layers")


def reflection_for(dtype: str = "float32") -> Reflection:
    """What ``generate`` accepts for ``dtype``."""
    return REFLECTION_INT8 if dtype == "int8" else REFLECTION


def generate(model, out: Path, dtype: str = "float32") -> dict:
    """Write the C sources of ``model`` (an ``ExportedModel``) into ``out``; return their facts."""
    from .emit import write_sources
    from .quant import quantise

    if dtype not in DTYPES:
        raise UserError(f"dtype {dtype!r} is not supported by the C generator", hint=f"one of: {', '.join(DTYPES)}")
    problems = reflection_for(dtype).problems(model.architecture)
    if problems:
        raise UserError(f"{model.folder}: the C generator cannot run this model in {dtype}: {problems[0]}")
    try:
        graph = lower(model.architecture, model.module())
    except Unsupported as exc:
        raise UserError(f"{model.folder}: {exc}") from None
    quant = quantise(graph, model.samples.x) if dtype == "int8" else None
    out = Path(out)
    facts = write_sources(graph, quant, out, model.architecture, model.preprocessing)
    np.ascontiguousarray(model.samples.x, dtype="<f4").tofile(out / "inputs.bin")
    result = {"arena_bytes": facts["arena_bytes"], "weight_bytes": facts["weight_bytes"], "dtype": dtype,
              "sources": ["model.c", "model.h", "kernels.c", "kernels.h", "bench_posix.c"],
              "input_size": graph.input_size, "output_size": graph.output_size}
    result["preprocess"] = facts["preprocess"]
    if quant is not None:
        result["quantisation"] = quant.scheme()
    return result


__all__ = ["DTYPES", "INT8_TOLERANCE", "REFLECTION", "REFLECTION_INT8", "compile_host", "compile_kernels", "generate",
           "reflection_for", "run_posix"]
