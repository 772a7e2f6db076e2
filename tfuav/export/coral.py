"""Coral Edge TPU: which ops of a full-integer .tflite the Edge TPU compiler maps, and where the
model falls back to the CPU.

Every op is checked in execution order against the Edge TPU's op set and documented limits
(configs/runtimes/edgetpu.yaml) and the general requirements: 8-bit quantized tensors (int32
only for constant biases and shape/axis parameters), static shapes, at most 3 non-unit
innermost dimensions, constant weights. The compiler partitions the graph only once, so the
first op that fails sends itself and every later op to the CPU; the report names that op, its
Keras layer and the reason. Where `edgetpu_compiler` is installed, it also compiles the model
and the report carries what the compiler said (ops mapped, on-chip and off-chip memory).
"""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tfuav.convert.inspect_tflite import (fused_activation, load_model, op_name, tensor_name,
                                          type_name)
from tfuav.errors import TfuavError
from tfuav.export.opcheck import keras_layer

COMPILER = "edgetpu_compiler"
COMPILER_TIMEOUT_S = 600
EIGHT_BIT = {"int8", "uint8"}
PARAMETER_TYPES = {"int32", "int64"}  # constant biases and shape/axis/size parameters
# Inputs that must be constant at compile time, by op: weights and biases (model parameters)
# and the shape/axis/size operands that fix tensor sizes.
CONSTANT_INPUTS = {
    "CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
    "TRANSPOSE_CONV": (0, 1, 3), "PRELU": (1,), "RESHAPE": (1,), "MEAN": (1,), "SUM": (1,),
    "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "PAD": (1,), "TRANSPOSE": (1,), "SPLIT": (0,),
    "SLICE": (1, 2), "STRIDED_SLICE": (1, 2, 3), "EXPAND_DIMS": (1,),
    "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,),
}
SOFTMAX_MAX_ELEMENTS = 16000


class EdgeTpuFallbackError(TfuavError):
    """Part of the model would run on the CPU instead of the Edge TPU."""


# ---------------------------------------------------------------------------------------------
# helpers on the flatbuffer


def _shape(tensor):
    return [int(d) for d in (tensor.shape if tensor.shape is not None else [])]


def _signature(tensor):
    sig = tensor.shapeSignature
    return [int(d) for d in sig] if sig is not None and len(sig) else _shape(tensor)


def _constant(model, tensor):
    if not tensor.buffer or tensor.buffer >= len(model.buffers or []):
        return None
    buf = model.buffers[tensor.buffer]
    if buf.data is None or len(buf.data) == 0:
        return None
    dtype = {"int32": np.int32, "int64": np.int64, "int8": np.int8, "uint8": np.uint8,
             "float32": np.float32, "int16": np.int16}.get(type_name(tensor))
    if dtype is None:
        return np.zeros(0)
    return np.frombuffer(bytes(bytearray(buf.data)), dtype=dtype).reshape(_shape(tensor) or ())


def _ids(indices):
    return [int(t) for t in (indices if indices is not None else []) if int(t) >= 0]


def _non_unit_dims(shape):
    return sum(1 for d in shape if d != 1)


class _Op:
    """One operator with what the checks need."""

    def __init__(self, model, sg, op, index):
        self.model, self.sg, self.op, self.index = model, sg, op, index
        self.name = op_name(model, op)
        self.raw_inputs = [int(t) for t in (op.inputs if op.inputs is not None else [])]
        self.inputs = _ids(op.inputs)
        self.outputs = _ids(op.outputs)
        self.options = op.builtinOptions

    def tensor(self, i):
        return self.sg.tensors[i]

    def input(self, pos):
        if pos >= len(self.raw_inputs) or self.raw_inputs[pos] < 0:
            return None
        return self.sg.tensors[self.raw_inputs[pos]]

    def const_input(self, pos):
        t = self.input(pos)
        return None if t is None else _constant(self.model, t)

    def is_const(self, i):
        return _constant(self.model, self.sg.tensors[i]) is not None


# ---------------------------------------------------------------------------------------------
# per-op constraints named in configs/runtimes/edgetpu.yaml: (op) -> True when violated


def _axes(op, pos=1):
    axes = op.const_input(pos)
    if axes is None:
        return None
    rank = len(_shape(op.input(0)))
    return sorted({int(a) % rank for a in np.atleast_1d(axes)}) if rank else []


def _reduces_batch(op):
    rank = len(_shape(op.input(0)))
    if rank < 2:
        return False
    if op.name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
        axes = _axes(op)
        return axes is not None and 0 in axes
    if op.name == "PAD":
        pads = op.const_input(1)
        return pads is not None and bool(np.any(np.asarray(pads).reshape(-1, 2)[0] != 0))
    if op.name == "SPLIT":
        axis = op.const_input(0)
        return axis is not None and int(np.atleast_1d(axis)[0]) % rank == 0
    if op.name == "PACK":
        return int(getattr(op.options, "axis", 0)) == 0
    if op.name == "SQUEEZE":
        dims = getattr(op.options, "squeezeDims", None)
        return dims is not None and any(int(d) % rank == 0 for d in dims)
    return False


def _z_not_multiple_of_4(op):
    shape = _shape(op.input(0))
    axes = _axes(op)
    return bool(shape) and axes is not None and len(shape) - 1 in axes and shape[-1] % 4 != 0


def _concat_constant_input(op):
    const = [i for i in op.inputs if op.is_const(i)]
    if not const:
        return False
    if len(op.inputs) != 2 or op.inputs[1] not in const or op.inputs[0] in const:
        return True
    t = op.tensor(op.inputs[1])
    q = t.quantization
    zero = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and \
        len(q.zeroPoint) else 0
    return bool(np.any(_constant(op.model, t) != zero))


def _dilation_differs(op):
    return int(getattr(op.options, "dilationHFactor", 1)) != \
        int(getattr(op.options, "dilationWFactor", 1))


def _grouped(op):
    x, w = op.input(0), op.input(1)
    return x is not None and w is not None and _shape(w)[-1] != _shape(x)[-1]


def _strided_slice(op):
    strides = op.const_input(3)
    masks = int(getattr(op.options, "ellipsisMask", 0)) or int(getattr(op.options, "newAxisMask", 0))
    return bool(masks) or strides is None or bool(np.any(np.asarray(strides) != 1))


def _softmax_not_1d(op):
    shape = _shape(op.input(0))
    return _non_unit_dims(shape) > 1 or int(np.prod(shape or [1])) > SOFTMAX_MAX_ELEMENTS


def _prelu_alpha(op):
    alpha = _shape(op.input(1)) if op.input(1) is not None else []
    return _non_unit_dims(alpha[:-1]) > 0


CONSTRAINT_TESTS = {
    "fused_activation": lambda op: fused_activation(op.op) not in (None, "NONE"),
    "constant_input": _concat_constant_input,
    "dilation_xy": _dilation_differs,
    "grouped": _grouped,
    "default_weights_format": lambda op: int(getattr(op.options, "weightsFormat", 0)) != 0,
    "output_1d": lambda op: _non_unit_dims(_shape(op.tensor(op.outputs[0]))) > 1,
    "no_batch_axis": _reduces_batch,
    "z_multiple_of_4": _z_not_multiple_of_4,
    "alpha_1d": _prelu_alpha,
    "input_1d": _softmax_not_1d,
    "unit_strides": _strided_slice,
}


# ---------------------------------------------------------------------------------------------
# the check


def _edge_conversion(op, graph_inputs, graph_outputs):
    """A float QUANTIZE at the graph input or DEQUANTIZE at the graph output: it runs on the
    CPU at the edge of the graph and does not split the Edge TPU part."""
    if op.name == "QUANTIZE" and op.inputs and op.inputs[0] in graph_inputs and \
            type_name(op.tensor(op.inputs[0])) not in EIGHT_BIT:
        return True
    return op.name == "DEQUANTIZE" and bool(op.outputs) and op.outputs[0] in graph_outputs


def _problem(op, runtime):
    """Why the Edge TPU cannot run this op (None: it can)."""
    name = op.name
    if name not in runtime.ops:
        return f"{name} is not an Edge TPU op (configs/runtimes/{runtime.name}.yaml)"
    types = set(runtime.ops[name].get("types") or EIGHT_BIT)
    for pos in CONSTANT_INPUTS.get(name, ()):
        t = op.input(pos)
        if t is not None and _constant(op.model, t) is None:
            return (f"input #{pos} '{tensor_name(t)}' is computed at run time; the Edge TPU "
                    f"needs constant weights and shape parameters")
    for i in op.inputs + op.outputs:
        t = op.tensor(i)
        kind = type_name(t)
        const = op.is_const(i)
        if kind not in types and not (const and kind in PARAMETER_TYPES):
            if name == "QUANTIZE" and i in op.outputs and kind in EIGHT_BIT:
                continue
            return (f"{kind} tensor '{tensor_name(t)}': the Edge TPU runs 8-bit quantized "
                    f"tensors only ({'/'.join(sorted(types))})")
        if const:
            continue
        sig = _signature(t)
        if any(d < 0 for d in sig[1:]):
            return f"tensor '{tensor_name(t)}' has a dynamic shape {sig}; sizes must be constant"
        shape = _shape(t)
        if len(shape) > 3 and any(d != 1 for d in shape[:-3]):
            return (f"tensor '{tensor_name(t)}' of shape {shape} has more than 3 non-unit "
                    f"innermost dimensions (dimensions outside the 3 innermost must be 1)")
    for check, reason in (runtime.constraints.get(name) or {}).items():
        if check not in CONSTRAINT_TESTS:
            raise TfuavError(f"configs/runtimes/{runtime.name}.yaml: unknown constraint "
                             f"{check!r} for {name} (expected one of: "
                             f"{', '.join(sorted(CONSTRAINT_TESTS))})")
        if CONSTRAINT_TESTS[check](op):
            return reason
    return None


def edgetpu_ops(model_bytes, runtime=None):
    """Per op, in execution order: {index, op, layer, output, edgetpu, reason, supported}.

    `supported`: the op on its own passes the checks; `edgetpu`: it will run on the Edge TPU
    (supported and no CPU op before it, graph-edge float conversions aside)."""
    from tfuav.targets import load_runtime
    runtime = runtime or load_runtime("edgetpu")
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    graph_inputs, graph_outputs = set(_ids(sg.inputs)), set(_ids(sg.outputs))
    rows, first = [], None
    for i, raw in enumerate(sg.operators or []):
        op = _Op(model, sg, raw, i)
        output = tensor_name(op.tensor(op.outputs[0])) if op.outputs else ""
        edge = _edge_conversion(op, graph_inputs, graph_outputs)
        problem = ("float conversion at the graph edge; runs on the CPU (give the model "
                   "int8/uint8 input and output)") if edge else _problem(op, runtime)
        row = {"index": i, "op": op.name, "layer": keras_layer(output, op.name),
               "output": output, "supported": problem is None, "edgetpu": False,
               "reason": problem}
        if problem is None and first is None:
            row["edgetpu"] = True
        elif problem is None:
            row["reason"] = (f"after the first CPU op #{first['index']} ({first['op']}): the "
                             f"compiler maps only the part of the graph before it")
        elif first is None and not edge:
            first = row
        rows.append(row)
    return rows, first


def _model_facts(model_bytes, rows, runtime):
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    inputs = [sg.tensors[i] for i in _ids(sg.inputs)]
    warnings = []
    for t in inputs:
        sig = _signature(t)
        if sig and sig[0] < 0:
            warnings.append(f"input '{tensor_name(t)}' has a dynamic batch (shape signature "
                            f"{sig}); the compiler fixes it to {_shape(t)[0]}: build the model "
                            f"with a batch of 1 (the coral form does)")
        if _shape(t) and _shape(t)[0] != 1:
            warnings.append(f"input '{tensor_name(t)}' has batch {_shape(t)[0]}; the Edge TPU "
                            f"runs batch 1")
    for name in sorted({r["op"] for r in rows if r["edgetpu"]}):
        note = (runtime.ops.get(name) or {}).get("note")
        if note:
            warnings.append(f"{name}: {note}")
    since = [int((runtime.ops.get(r["op"]) or {}).get("since") or 0) for r in rows]
    return {
        "inputs": [{"name": tensor_name(t), "shape": _shape(t), "dtype": type_name(t)}
                   for t in inputs],
        "min_runtime_version": max(since) if any(since) else None,
        "warnings": warnings,
    }


def edgetpu_report(model_bytes, model_path=None, out_dir=None, compile=True, runtime=None):
    """Edge TPU compatibility of a full-integer .tflite (bytes).

    Returns {"edgetpu_ops", "cpu_ops", "total_ops", "fully_mapped", "first_cpu_op" (the op
    that splits the graph, {index, op, layer, output, reason}, or None), "ops" (per op),
    "inputs", "min_runtime_version", "warnings", "compiler"}. "compiler" is what
    `edgetpu_compiler` said when it is on PATH and compile is true (see
    run_edgetpu_compiler); otherwise it says why not and gives the command to run.
    model_path / out_dir: the file the compiler reads (default: a temporary copy of the bytes)
    and where it writes model_edgetpu.tflite and its log (default: a temporary folder)."""
    from tfuav.targets import load_runtime
    runtime = runtime or load_runtime("edgetpu")
    rows, first = edgetpu_ops(model_bytes, runtime)
    on_tpu = sum(r["edgetpu"] for r in rows)
    report = {
        "edgetpu_ops": on_tpu,
        "cpu_ops": len(rows) - on_tpu,
        "total_ops": len(rows),
        "fully_mapped": on_tpu == len(rows),
        "first_cpu_op": None if first is None else
        {k: first[k] for k in ("index", "op", "layer", "output", "reason")},
        "ops": rows,
    }
    report.update(_model_facts(model_bytes, rows, runtime))
    report["compiler"] = _compiler_section(model_bytes, model_path, out_dir, compile)
    return report


def assert_edgetpu_ready(report):
    """Raise EdgeTpuFallbackError naming the first CPU op when any op would leave the Edge TPU."""
    first = report.get("first_cpu_op")
    if first is None and report.get("cpu_ops", 0) == 0:
        return
    if first is None:
        cpu = [r for r in report["ops"] if not r["edgetpu"]]
        raise EdgeTpuFallbackError(f"{len(cpu)} op(s) run on the CPU: {cpu[0]['op']} "
                                   f"(op #{cpu[0]['index']}): {cpu[0]['reason']}")
    origin = (f"from Keras layer '{first['layer']}'" if first["layer"] else
              f"output tensor '{first['output']}'")
    raise EdgeTpuFallbackError(
        f"op {first['op']} (op #{first['index']}, {origin}) cannot run on the Edge TPU: "
        f"{first['reason']}; it and the {report['cpu_ops'] - 1} op(s) after it run on the CPU")


# ---------------------------------------------------------------------------------------------
# edgetpu_compiler


def compiler_command(model_path="model.tflite", out_dir="OUTDIR"):
    return [COMPILER, "-s", "-o", str(out_dir), str(model_path)]


def _compiler_section(model_bytes, model_path, out_dir, compile):
    shown = " ".join(compiler_command(model_path or "model_int8.tflite", out_dir or "OUTDIR"))
    if not compile:
        return {"available": shutil.which(COMPILER) is not None, "ran": False,
                "command": shown, "note": "not run (compile=False)"}
    if shutil.which(COMPILER) is None:
        return {"available": False, "ran": False, "command": shown,
                "note": f"{COMPILER} is not on PATH; install it (Debian/Ubuntu x86-64: apt-get "
                        f"install edgetpu-compiler from Coral's package repository) or run the "
                        f"command on a machine that has it"}
    with tempfile.TemporaryDirectory(prefix="tfuav-edgetpu-") as tmp:
        path = Path(model_path) if model_path else Path(tmp) / "model_int8.tflite"
        if not model_path:
            path.write_bytes(model_bytes)
        result = run_edgetpu_compiler(path, Path(out_dir) if out_dir else Path(tmp) / "out")
    return result


def run_edgetpu_compiler(model_path, out_dir, timeout_s=COMPILER_TIMEOUT_S):
    """Run `edgetpu_compiler -s -o OUT_DIR MODEL` and parse what it printed (and its .log)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = compiler_command(model_path, out_dir)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"available": True, "ran": True, "command": " ".join(cmd), "returncode": None,
                "succeeded": False, "note": f"timed out after {timeout_s} s"}
    text = proc.stdout + ("\n" + proc.stderr if proc.stderr else "")
    parsed = parse_compiler_log(text)
    log = out_dir / f"{Path(model_path).stem}_edgetpu.log"
    if log.is_file() and not parsed["operators"]:
        parsed["operators"] = parse_compiler_log(log.read_text(errors="replace"))["operators"]
    parsed.update(available=True, ran=True, command=" ".join(cmd), returncode=proc.returncode,
                  succeeded=proc.returncode == 0 and parsed["succeeded"] is not False)
    compiled = out_dir / f"{Path(model_path).stem}_edgetpu.tflite"
    parsed["compiled_model"] = str(compiled) if compiled.is_file() else None
    if proc.returncode != 0:
        parsed["error"] = text.strip().splitlines()[-1] if text.strip() else "no output"
    return parsed


_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3,
               "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


def _bytes(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B|B)\s*", text)
    return int(round(float(m.group(1)) * _SIZE_UNITS[m.group(2)])) if m else None


_FIELDS = {  # log line label -> (report key, converter)
    "Edge TPU Compiler version": ("version", str),
    "Input model": ("input_model", str),
    "Input": ("input_model", str),
    "Output model": ("output_model", str),
    "Output": ("output_model", str),
    "Input size": ("input_size_bytes", _bytes),
    "Output size": ("output_size_bytes", _bytes),
    "On-chip memory used for caching model parameters": ("on_chip_cache_bytes", _bytes),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining_bytes", _bytes),
    "Off-chip memory used for streaming uncached model parameters":
        ("off_chip_streaming_bytes", _bytes),
    "Number of Edge TPU subgraphs": ("subgraphs", int),
    "Total number of operations": ("total_ops", int),
    "Operation log": ("operation_log", str),
    "Number of operations that will run on Edge TPU": ("edgetpu_ops", int),
    "Number of operations that will run on CPU": ("cpu_ops", int),
}


def parse_compiler_log(text):
    """What edgetpu_compiler printed (with -s) or wrote to its .log, as a dict:
    version, input/output model and sizes, on-chip memory used for caching model parameters
    (and remaining), off-chip memory used for streaming uncached parameters (bytes), Edge TPU
    subgraphs, total / Edge TPU / CPU op counts, compile_ms, succeeded, and `operators`: one
    {op, count, status, mapped} per row of the operator table. Missing values are None."""
    out = {key: None for key, _ in _FIELDS.values()}
    out.update(compile_ms=None, succeeded=None, operators=[])
    in_table = False
    for line in text.splitlines():
        stripped = line.strip()
        m = re.match(r"Edge TPU Compiler version\s+(\S+)", stripped)
        if m:
            out["version"] = m.group(1)
            continue
        m = re.match(r"Model compiled successfully in\s+(\d+)\s*ms", stripped)
        if m:
            out["compile_ms"] = int(m.group(1))
            out["succeeded"] = True
            continue
        if re.match(r"(Compilation failed|ERROR:|Internal compiler error)", stripped):
            out["succeeded"] = False
        if re.match(r"Operator\s+Count\s+Status", stripped):
            in_table = True
            continue
        if in_table:
            m = re.match(r"([A-Z][A-Z0-9_:]*)\s+(\d+)\s+(\S.*)$", stripped)
            if m:
                status = m.group(3).strip()
                out["operators"].append({"op": m.group(1), "count": int(m.group(2)),
                                         "status": status,
                                         "mapped": status.startswith("Mapped to Edge TPU")})
                continue
            if stripped:
                in_table = False
        if ":" in stripped:
            label, _, value = stripped.partition(":")
            field = _FIELDS.get(label.strip())
            if field and value.strip():
                key, convert = field
                try:
                    out[key] = convert(value.strip())
                except ValueError:
                    out[key] = None
    if out["operators"] and out["edgetpu_ops"] is None:
        out["edgetpu_ops"] = sum(r["count"] for r in out["operators"] if r["mapped"])
        out["cpu_ops"] = sum(r["count"] for r in out["operators"] if not r["mapped"])
    if out["cpu_ops"] is None and out["edgetpu_ops"] is not None and out["total_ops"] is not None:
        out["cpu_ops"] = out["total_ops"] - out["edgetpu_ops"]
    return out


# ---------------------------------------------------------------------------------------------
# markdown


def _mib(n):
    return "?" if n is None else (f"{n / 1024 ** 2:.2f} MiB" if n >= 1024 ** 2 else
                                  f"{n / 1024:.2f} KiB" if n >= 1024 else f"{n} B")


def edgetpu_report_markdown(report, title="Coral Edge TPU"):
    """The report as markdown: summary, the first CPU op, compiler figures, the CPU ops."""
    lines = [f"## {title}", ""]
    total = report["total_ops"]
    verdict = ("all ops run on the Edge TPU" if report["fully_mapped"] else
               f"{report['cpu_ops']} of {total} ops run on the CPU")
    lines += [f"- Ops on the Edge TPU: **{report['edgetpu_ops']} / {total}** ({verdict})"]
    for t in report.get("inputs", []):
        lines.append(f"- Input `{t['name']}`: {t['shape']} {t['dtype']}")
    if report.get("min_runtime_version"):
        lines.append(f"- Needs Edge TPU runtime {report['min_runtime_version']}+ "
                     f"(edgetpu_compiler 15+)")
    first = report["first_cpu_op"]
    if first:
        layer = f" (Keras layer `{first['layer']}`)" if first["layer"] else ""
        lines += ["", f"**First CPU op:** #{first['index']} `{first['op']}`{layer}: "
                      f"{first['reason']}. The compiler maps the graph only up to this op; "
                      f"it and every op after it run on the CPU."]
    comp = report.get("compiler") or {}
    lines += ["", "### edgetpu_compiler", ""]
    if comp.get("ran"):
        lines += [
            "| | |", "|---|---|",
            f"| version | {comp.get('version') or '?'} |",
            f"| ops on Edge TPU / CPU | {comp.get('edgetpu_ops')} / {comp.get('cpu_ops')} |",
            f"| on-chip memory for caching parameters | {_mib(comp.get('on_chip_cache_bytes'))} |",
            f"| off-chip memory for streaming parameters | "
            f"{_mib(comp.get('off_chip_streaming_bytes'))} |",
            f"| Edge TPU subgraphs | {comp.get('subgraphs')} |",
        ]
        if comp.get("error"):
            lines += ["", f"Compiler error: `{comp['error']}`"]
    else:
        lines += [f"Not run: {comp.get('note', '')}.", "", "```sh", comp.get("command", ""),
                  "```"]
    cpu = [r for r in report["ops"] if not r["edgetpu"]]
    if cpu:
        lines += ["", "### Ops on the CPU", "", "| # | op | Keras layer | reason |",
                  "|---|---|---|---|"]
        for r in cpu[:40]:
            reason = (r["reason"] or "").replace("|", "\\|")
            lines.append(f"| {r['index']} | {r['op']} | {r['layer'] or ''} | {reason} |")
        if len(cpu) > 40:
            lines.append(f"| ... | {len(cpu) - 40} more | | |")
    if report.get("warnings"):
        lines += ["", "### Notes", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def export_coral(model_bytes, target, out_dir, name, labels=None, echo=print):
    """The coral target's package: the Edge TPU report (edgetpu_report.json / .md) and the host
    bundle (rpi_bundle/, run with --edgetpu). Returns the report."""
    from tfuav.export.rpi import export_rpi
    from tfuav.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
    out_dir = Path(out_dir)
    model_path = out_dir / "model_int8.tflite"
    atomic_write_bytes(model_path, bytes(model_bytes))
    report = edgetpu_report(model_bytes, model_path=model_path, out_dir=out_dir)
    atomic_write_json(out_dir / "edgetpu_report.json", report)
    atomic_write_text(out_dir / "edgetpu_report.md", edgetpu_report_markdown(report))
    first = report["first_cpu_op"]
    if first is None:
        echo(f"  Edge TPU: all {report['total_ops']} ops map to the Edge TPU")
    else:
        echo(f"  Edge TPU: {report['edgetpu_ops']} of {report['total_ops']} ops; op "
             f"#{first['index']} {first['op']} (layer {first['layer']!r}) and everything "
             f"after it run on the CPU: {first['reason']}")
    if not report["compiler"].get("ran"):
        echo(f"  edgetpu_compiler is not installed here; compile with: "
             f"{report['compiler']['command']}")
    compiled = out_dir / "model_int8_edgetpu.tflite"
    export_rpi(model_bytes, target, out_dir, name=name, labels=labels, echo=echo,
               edgetpu_model=compiled.read_bytes() if report["compiler"].get("ran")
               and compiled.is_file() else None)
    return report
