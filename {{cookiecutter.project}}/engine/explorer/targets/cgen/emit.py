"""Write the C sources of one model: ``model.h``/``model.c`` generated, the kernels and the POSIX
benchmark copied from this package (readable C, not strings), ``inputs.bin`` from the samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .lower import ACT_CODES, Graph, Node, Ref
from .plan import Slot, plan
from .quant import Quantised

HERE = Path(__file__).parent
COPIED = ("kernels.h", "kernels.c", "bench_posix.c")
ACT_NAMES = {v: f"K_ACT_{k.upper()}" for k, v in ACT_CODES.items()}
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t"}


def _literal(value, dtype: np.dtype) -> str:
    if dtype == np.float32:
        text = str(np.float32(value))
        return text + "f" if any(ch in text for ch in ".e") else text + ".0f"
    return str(int(value))


def c_array(name: str, values: np.ndarray, per_line: int = 8) -> str:
    values = np.ascontiguousarray(values).reshape(-1)
    items = [_literal(v, values.dtype) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {C_TYPES[values.dtype]} {name}[{len(items)}] = {{\n    {body}\n}};\n"


class _Writer:
    def __init__(self, graph: Graph, quant: Quantised | None):
        self.graph, self.quant = graph, quant
        self.int8 = quant is not None
        self.elem = 1 if self.int8 else 4
        self.t = "s8" if self.int8 else "f32"
        self.slots = [Slot(b.id, b.numel * self.elem, b.first, b.last) for b in graph.buffers]
        self.offsets, self.arena_bytes = plan(self.slots)
        self.consts: list[str] = []
        self.calls: list[str] = []
        self.weight_bytes = 0

    def ptr(self, ref: Ref) -> str:
        return f"(arena + {self.offsets[ref.buffer.id] // self.elem + ref.offset})"

    def const(self, name: str, values: np.ndarray) -> str:
        self.consts.append(c_array(name, values))
        self.weight_bytes += values.nbytes
        return name

    def struct(self, kind: str, name: str, fields: dict) -> str:
        body = ", ".join(str(v) for v in fields.values())
        self.consts.append(f"static const {kind} {name} = {{{body}}}; /* {', '.join(fields)} */\n")
        self.weight_bytes += 4 * len(fields)
        return "&" + name

    def node(self, i: int, node: Node) -> None:
        a, t, q = node.attrs, self.t, self.quant
        x = self.ptr(node.inputs[0]) if node.inputs else ""
        y = self.ptr(node.output)
        c = q.consts.get(i, {}) if q else node.consts
        tag = f"n{i}"
        if node.kind not in ("input", "output", "mean", "transpose") and not (q is None and node.kind == "act"):
            self.consts.append(f"\n/* {node.layer}: {node.kind} */\n")
        if node.kind == "input":
            call = (f"k_quantize_s8(input, {y}, {node.output.numel}, {_literal(1.0 / q.out_scale[i], np.float32)})"
                    if q else f"k_copy_f32(input, {y}, {node.output.numel})")
        elif node.kind == "output":
            call = (f"k_dequantize_s8({x}, output, {node.inputs[0].numel}, {_literal(q.in_scale[i], np.float32)})"
                    if q else f"k_copy_f32({x}, output, {node.inputs[0].numel})")
        elif node.kind == "conv":
            fields = {k: a[k] for k in ("c", "h", "w", "oc", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow", "groups")}
            fields["act"] = ACT_NAMES[ACT_CODES[a["act"]]]
            s = self.struct("k_conv_t", f"{tag}_shape", fields)
            w, b = self.const(f"{tag}_w", c["w"]), self.const(f"{tag}_b", c["b"])
            call = f"k_conv_{t}({x}, {w}, {b}, {y}, {s}"
            call += (f", {self.const(f'{tag}_acc_scale', c['acc_scale'])}, "
                     f"{_literal(1.0 / q.out_scale[i], np.float32)})" if q else ")")
        elif node.kind == "linear":
            w, b = self.const(f"{tag}_w", c["w"]), self.const(f"{tag}_b", c["b"])
            call = f"k_linear_{t}({x}, {w}, {b}, {y}, {a['n_in']}, {a['n_out']}, {ACT_NAMES[ACT_CODES[a['act']]]}"
            call += (f", {self.const(f'{tag}_acc_scale', c['acc_scale'])}, "
                     f"{_literal(1.0 / q.out_scale[i], np.float32)})" if q else ")")
        elif node.kind in ("maxpool", "avgpool"):
            s = self.struct("k_pool_t", f"{tag}_shape",
                            {k: a[k] for k in ("c", "h", "w", "kh", "kw", "sh", "sw", "oh", "ow")})
            call = f"k_{node.kind}_{t}({x}, {y}, {s})"
        elif node.kind == "mean":
            call = f"k_mean_{t}({x}, {y}, {a['outer']}, {a['n']}, {a['inner']})"
        elif node.kind == "affine":
            if q:
                call = (f"k_affine_s8({y}, {self.const(f'{tag}_mul', c['mul'])}, {self.const(f'{tag}_add', c['add'])}, "
                        f"{a['outer']}, {a['c']}, {a['inner']})")
            else:
                call = (f"k_affine_f32({y}, {self.const(f'{tag}_scale', c['scale'])}, "
                        f"{self.const(f'{tag}_shift', c['shift'])}, {a['outer']}, {a['c']}, {a['inner']})")
        elif node.kind == "act":
            call = (f"k_lut_s8({y}, {a['n']}, {self.const(f'{tag}_lut', c['lut'])})" if q
                    else f"k_activation_{t}({y}, {a['n']}, {ACT_NAMES[ACT_CODES[a['act']]]})")
        elif node.kind == "layernorm":
            w = self.const(f"{tag}_weight", node.consts["weight"])
            b = self.const(f"{tag}_bias", node.consts["bias"])
            call = f"k_layernorm_{t}({y}, {a['outer']}, {a['n']}, {w}, {b}, {_literal(a['eps'], np.float32)}"
            call += (f", {_literal(q.in_scale[i], np.float32)}, {_literal(1.0 / q.out_scale[i], np.float32)})"
                     if q else ")")
        elif node.kind == "transpose":
            call = f"k_transpose_{t}({x}, {y}, {a['rows']}, {a['cols']})"
        elif node.kind in ("lstm", "gru"):
            if q:
                raise ValueError(f"{node.layer}: {node.kind} has float32 kernels only")
            h, dirs = a["hidden"], a["dirs"]
            s = self.struct("k_rnn_t", f"{tag}_shape", {"steps": a["steps"], "features": a["features"], "hidden": h,
                                                        "y_stride": h * dirs})
            calls = []
            for d in range(dirs):
                names = [self.const(f"{tag}_{part}{d}", c[f"{part}{d}"])
                         for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                out = f"(arena + {self.offsets[node.output.buffer.id] // self.elem + node.output.offset + d * h})"
                calls.append(f"k_{node.kind}_f32({x}, {out}, {s}, {', '.join(names)}, {d}, {self.ptr(node.scratch)})")
            call = ";\n    ".join(calls)
        else:
            raise ValueError(node.kind)
        self.calls.append(f"    /* {node.layer}: {node.kind} */\n    {call};\n")

    def model_c(self, preprocess: str = "") -> str:
        for i, node in enumerate(self.graph.nodes):
            self.node(i, node)
        arena = ("static int8_t arena[MODEL_ARENA_BYTES];" if self.int8 else
                 "static float arena[MODEL_ARENA_BYTES / sizeof(float)];")
        return ("/* Generated by explorer (C99 model generator): weights, arena plan and the kernel calls. */\n"
                '#include "model.h"\n#include "kernels.h"\n\n' + "".join(self.consts) +
                f"\n/* Every activation tensor lives here at an offset planned from tensor liveness. */\n{arena}\n\n"
                "int model_invoke(const float *input, float *output)\n{\n" + "".join(self.calls) +
                "    return 0;\n}\n" + (f"\n{preprocess}" if preprocess else ""))

    def model_h(self, preprocess: bool) -> str:
        g = self.graph
        return ("/* Generated by explorer (C99 model generator). */\n"
                "#ifndef EXPLORER_MODEL_H\n#define EXPLORER_MODEL_H\n\n"
                f"#define MODEL_INPUT_SIZE {g.input_size}\n#define MODEL_OUTPUT_SIZE {g.output_size}\n"
                f"#define MODEL_ARENA_BYTES {self.arena_bytes}\n#define MODEL_WEIGHT_BYTES {self.weight_bytes}\n"
                f"#define MODEL_DTYPE_INT8 {int(self.int8)}\n#define MODEL_PREPROCESS {int(preprocess)}\n\n"
                "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
                "/* Run the model on MODEL_INPUT_SIZE floats, write MODEL_OUTPUT_SIZE floats; 0 on success. */\n"
                "int model_invoke(const float *input, float *output);\n\n" +
                ("/* Raw [C, L] sample -> model input (the on-device pre-processing steps); 0 on success. */\n"
                 "int preprocess_invoke(const float *raw, float *model_input);\n\n" if preprocess else "") +
                "#ifdef __cplusplus\n}\n#endif\n\n#endif\n")


def write_sources(graph: Graph, quant: Quantised | None, out: Path, architecture=None,
                  preprocessing: dict | None = None) -> dict:
    from .preprocess import emit_preprocess, plan_preprocess

    writer = _Writer(graph, quant)
    steps, reason = (plan_preprocess(preprocessing or {}, architecture) if architecture is not None
                     else (None, "no architecture given"))
    source = writer.model_c(emit_preprocess(writer, steps, architecture) if steps is not None else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.c").write_text(source)
    (out / "model.h").write_text(writer.model_h(steps is not None))
    for name in COPIED:
        shutil.copyfile(HERE / name, out / name)
    return {"arena_bytes": writer.arena_bytes, "weight_bytes": writer.weight_bytes,
            "slots": writer.slots, "offsets": writer.offsets,
            "preprocess": {"on_device": steps is not None, "steps": [s[0] for s in steps or []],
                           **({"reason": reason} if steps is None else {})}}
