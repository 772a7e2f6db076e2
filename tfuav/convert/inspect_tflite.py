"""Read a .tflite flatbuffer without TensorFlow: ops, tensors, quantization, MACs."""
from collections import Counter

import numpy as np

from tfuav.errors import TfuavError

try:  # the TFLite schema, generated for Python, ships with the tflite-micro wheel
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
except ImportError as exc:  # pragma: no cover - depends on the installed wheel
    raise ImportError("tfuav needs the tflite-micro wheel (it ships the TFLite schema)") from exc

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
ACTIVATION_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items()
                    if not k.startswith("_")}

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL")


def load_model(model_bytes, source=None):
    """The flatbuffer as a schema.ModelT object tree (source: a path/name for error messages)."""
    where = f"{source}: " if source else ""
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise TfuavError(f"{where}not a valid .tflite flatbuffer "
                         f"({type(exc).__name__}: {exc})") from exc
    if not model.subgraphs:
        raise TfuavError(f"{where}the .tflite model has no subgraph")
    return model


def op_name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode
        return f"CUSTOM:{custom.decode() if isinstance(custom, bytes) else custom}"
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def tensor_name(tensor):
    name = tensor.name
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def type_name(tensor):
    return TYPE_NAMES.get(tensor.type, f"type{tensor.type}")


def fused_activation(op):
    """Name of the op's fused activation ('NONE', 'RELU', 'RELU6', ...) or None if it has none."""
    opts = op.builtinOptions
    if opts is None or not hasattr(opts, "fusedActivationFunction"):
        return None
    return ACTIVATION_NAMES.get(opts.fusedActivationFunction, str(opts.fusedActivationFunction))


def _shape(tensor):
    return [int(d) for d in (tensor.shape if tensor.shape is not None else [])]


def _io(subgraph, indices):
    out = []
    for i in indices if indices is not None else []:
        t = subgraph.tensors[i]
        q = t.quantization
        scale = q.scale if q is not None and q.scale is not None and len(q.scale) else None
        zp = q.zeroPoint if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else None
        out.append({
            "name": tensor_name(t),
            "shape": _shape(t),
            "dtype": type_name(t),
            "scale": float(scale[0]) if scale is not None else None,
            "zero_point": int(zp[0]) if zp is not None else None,
        })
    return out


def _op_macs(name, op, tensors):
    def shape(pos):
        if op.inputs is None or pos >= len(op.inputs) or op.inputs[pos] < 0:
            return None
        return _shape(tensors[op.inputs[pos]])

    out = _shape(tensors[op.outputs[0]])
    n_out = int(np.prod(out)) if out else 0
    if name == "CONV_2D":  # filter [out_c, kh, kw, in_c / groups]
        _, kh, kw, fin = shape(1)
        return n_out * kh * kw * fin
    if name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out_c]
        _, kh, kw, _ = shape(1)
        return n_out * kh * kw
    if name == "FULLY_CONNECTED":  # weights [units, in]; output [batch..., units]
        return n_out * shape(1)[-1]
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, weights [out_c, kh, kw, in_c], input
        _, kh, kw, in_c = shape(1)
        return int(np.prod(shape(2))) * kh * kw * _shape(tensors[op.outputs[0]])[-1]
    if name == "BATCH_MATMUL":
        a = shape(0)
        adj_x = bool(getattr(op.builtinOptions, "adjX", False))
        return n_out * (a[-2] if adj_x else a[-1])
    return 0


def _is_constant(model, tensor):
    if not tensor.buffer or tensor.buffer >= len(model.buffers or []):
        return False
    buf = model.buffers[tensor.buffer]
    return (buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "offset", 0))


def tflite_info(model_bytes, source=None):
    """Summary of a .tflite model (first subgraph): ops in execution order, histogram, tensor
    types, size, inputs/outputs with quantization, multiply-accumulate count, and params (the
    number of elements in constant tensors: weights, biases, other constants).

    source: optional path or name, used only in error messages."""
    model = load_model(model_bytes, source=source)
    sg = model.subgraphs[0]
    tensors = sg.tensors
    ops = [op_name(model, op) for op in sg.operators or []]
    macs = 0
    for name, op in zip(ops, sg.operators or []):
        if name in MAC_OPS:
            macs += _op_macs(name, op, tensors)
    return {
        "ops": ops,
        "op_histogram": dict(Counter(ops)),
        "tensor_types": dict(Counter(type_name(t) for t in tensors)),
        "size_bytes": len(model_bytes),
        "inputs": _io(sg, sg.inputs),
        "outputs": _io(sg, sg.outputs),
        "macs": int(macs),
        "params": int(sum(int(np.prod(_shape(t))) for t in tensors if _is_constant(model, t))),
    }


def op_details(model_bytes):
    """Per op of the first subgraph: {index, name, fused_activation, options (dict or None)}."""
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    result = []
    for i, op in enumerate(sg.operators or []):
        opts = op.builtinOptions
        result.append({
            "index": i,
            "name": op_name(model, op),
            "fused_activation": fused_activation(op),
            "options": dict(vars(opts)) if opts is not None else None,
        })
    return result
