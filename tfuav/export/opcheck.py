"""Before packaging: every op of the model must be one the target's runtime can run, with the
activation types and parameters it supports. A failure names the op and the Keras layer."""
import re

from tfuav.convert.inspect_tflite import load_model, op_name, tensor_name, type_name
from tfuav.errors import TfuavError

# Tensors of these types may flow through any op: indices, shapes, biases, accumulators.
AUXILIARY_TYPES = {"int32", "int64", "bool"}
# Ops that convert between types: their float side is the graph's float I/O, checked elsewhere.
CONVERSION_OPS = {"QUANTIZE", "DEQUANTIZE", "CAST"}


class UnsupportedOpError(TfuavError):
    """The model uses an op (or an op parameter) the target's runtime does not support."""


def keras_layer(name, op):
    """Best guess of the Keras layer an op came from, from its output tensor's name.

    The converter names a fused op after all the TF ops it absorbed ('model/act/Relu;
    model/bn/FusedBatchNormV3;model/conv2d/Conv2D'); the part whose TF op matches the TFLite
    op wins, else the first part. None when the converter kept no layer path (e.g. 'Conv2D1')."""
    parts = [p for p in name.split(";") if p]
    if not parts:
        return None
    key = op.replace("_", "").lower()
    chosen = parts[0]
    for part in parts:
        last = re.sub(r"\d+$", "", part.split("/")[-1]).replace("_", "").lower()
        if last and (last in key or key in last):
            chosen = part
            break
    comps = chosen.split("/")
    if len(comps) >= 3:
        return comps[1]
    return comps[0] if len(comps) == 2 else None


def _grouped_conv(sg, op):
    """CONV_2D whose filter depth is smaller than the input depth (groups > 1)."""
    in_depth = sg.tensors[op.inputs[0]].shape[-1]
    filter_depth = sg.tensors[op.inputs[1]].shape[-1]
    return int(filter_depth) != int(in_depth)


def _int16_input(sg, op):
    return type_name(sg.tensors[op.inputs[0]]) == "int16"


# constraint name in configs/runtimes/*.yaml -> test that an op violates it
CONSTRAINT_TESTS = {
    "grouped": lambda sg, op: _grouped_conv(sg, op),
    "grouped_int16": lambda sg, op: _grouped_conv(sg, op) and _int16_input(sg, op),
}


def unsupported_ops(model_bytes, runtime):
    """List of {index, op, layer, problem} for every op the runtime cannot run (empty: all fine)."""
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    found = []
    for i, op in enumerate(sg.operators or []):
        name = op_name(model, op)
        outs = [int(t) for t in (op.outputs if op.outputs is not None else [])]
        output = tensor_name(sg.tensors[outs[0]]) if outs else ""
        layer = keras_layer(output, name)

        def problem(text):
            found.append({"index": i, "op": name, "layer": layer, "output": output,
                          "problem": text})

        if name not in runtime.ops:
            problem(f"not in the {runtime.name} op set (configs/runtimes/{runtime.name}.yaml)")
            continue
        if name not in CONVERSION_OPS:
            types = runtime.ops[name]["types"]
            ins = [int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0]
            bad = sorted({type_name(sg.tensors[t]) for t in ins + outs}
                         - set(types) - AUXILIARY_TYPES)
            if bad:
                problem(f"{'/'.join(bad)} tensors; {runtime.name} runs this op in "
                        f"{'/'.join(types)} only")
                continue
        for check, reason in (runtime.constraints.get(name) or {}).items():
            if check not in CONSTRAINT_TESTS:
                raise TfuavError(f"configs/runtimes/{runtime.name}.yaml: unknown constraint "
                                 f"{check!r} for {name} (expected one of: "
                                 f"{', '.join(sorted(CONSTRAINT_TESTS))})")
            if CONSTRAINT_TESTS[check](sg, op):
                problem(reason)
    return found


def assert_ops_supported(model_bytes, runtime, target_name):
    problems = unsupported_ops(model_bytes, runtime)
    if problems:
        p = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        origin = (f"from Keras layer '{p['layer']}'" if p["layer"] else
                  f"output tensor '{p['output']}'; the converter kept no Keras layer name")
        raise UnsupportedOpError(f"op {p['op']} (op #{p['index']}, {origin}) cannot run on "
                                 f"{target_name}: {p['problem']}{more}")
