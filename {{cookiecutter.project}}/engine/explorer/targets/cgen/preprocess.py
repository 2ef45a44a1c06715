"""The on-device part of the pre-processing pipeline as C: ``preprocess_invoke(raw, model_input)``.

Only a pipeline made of per-sample ``filter`` (causal second-order sections from a zero state,
scipy's ``sosfilt``, transposed direct form II) and ``normalize`` (per-channel affine) steps runs
on the device: the board takes raw [C, L] samples and needs nothing else. Windowing,
downsampling and event windows cut or resample the recording before a sample exists, so a
pipeline with them stays on the host (``MODEL_PREPROCESS`` is 0 and the reason is reported).
"""

from __future__ import annotations

import numpy as np

ON_DEVICE = ("filter", "normalize")


def plan_preprocess(preprocessing: dict, architecture) -> tuple[list[tuple[str, dict, dict]] | None, str]:
    """The steps to emit ([] for no pre-processing) or None with the reason they stay on the host."""
    from ...preprocess.steps import STEPS

    steps = preprocessing.get("steps") or []
    states = preprocessing.get("state") or []
    off = [s["step"] for s in steps if s["step"] not in ON_DEVICE]
    if off:
        return None, f"steps {', '.join(off)} run before a sample exists (host side)"
    if steps and architecture.input.kind != "channels":
        return None, f"pre-processing needs a [C, L] model input, not {architecture.input.kind}"
    if len(states) != len(steps) or any(s["step"] == "normalize" and "center" not in state
                                        for s, state in zip(steps, states)):
        return None, "the model folder has no fitted pre-processing state"
    return [(s["step"], STEPS[s["step"]].with_defaults(s["params"]), state) for s, state in zip(steps, states)], ""


def emit_preprocess(writer, steps: list[tuple[str, dict, dict]], architecture) -> str:
    """The C function (constants go through ``writer.const``)."""
    from ...preprocess.steps import _sos

    calls = []
    channels, length = (architecture.input.shape if steps else (1, architecture.input.numel))
    for i, (name, params, state) in enumerate(steps):
        if name == "filter":
            sos = _sos(params).astype(np.float32)
            coeffs = writer.const(f"pre{i}_sos", sos)
            calls.append(f"    /* filter {params['type']} order {params['order']} */\n"
                         f"    k_sos_f32(model_input, {channels}, {length}, {coeffs}, {len(sos)});\n")
        else:
            center = np.asarray(state["center"], dtype=np.float64)
            scale = np.asarray(state["scale"], dtype=np.float64)
            mul = writer.const(f"pre{i}_mul", (1.0 / scale).astype(np.float32))
            add = writer.const(f"pre{i}_add", (-center / scale).astype(np.float32))
            calls.append(f"    /* normalize {params['method']} */\n"
                         f"    k_affine_f32(model_input, {mul}, {add}, 1, {channels}, {length});\n")
    return ("int preprocess_invoke(const float *raw, float *model_input)\n{\n"
            f"    k_copy_f32(raw, model_input, MODEL_INPUT_SIZE);\n{''.join(calls)}    return 0;\n}}\n")
