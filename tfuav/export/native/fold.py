"""Constant folding at generation time: ops whose inputs are all known before the model runs
(shape arithmetic such as SHAPE -> STRIDED_SLICE -> PACK feeding TRANSPOSE_CONV's output
shape) are evaluated here with numpy, byte-exactly, and leave the graph."""
import numpy as np

from tfuav.export.native.graph import NUMPY_TYPES

# ops that only move or re-type bytes, or do exact integer arithmetic on int32/int64
_INTEGER_TYPES = ("int32", "int64")


def _evaluate(op, graph):
    """The op's output value, or None if this op is not folded."""
    t = graph.tensors
    ins = [t[i] if i >= 0 else None for i in op.inputs]
    out = t[op.outputs[0]]
    name = op.name
    if name == "SHAPE":
        return np.array(ins[0].shape, dtype=NUMPY_TYPES.get(out.dtype, np.int32))
    if any(x is None or not x.is_const for x in ins) or len(op.outputs) != 1:
        return None
    data = [x.data for x in ins]
    if name == "PACK":
        return np.stack(data, axis=op.options.axis)
    if name == "STRIDED_SLICE" and not (op.options.ellipsisMask or op.options.newAxisMask):
        from tfuav.export.native.ops_misc import strided_slice_index
        return data[0][strided_slice_index(op, data[0].shape, data[1], data[2], data[3])]
    if name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return data[0].reshape(out.shape)
    if name == "CONCATENATION" and out.dtype in _INTEGER_TYPES:
        return np.concatenate(data, axis=op.options.axis)
    if name == "GATHER" and out.dtype in _INTEGER_TYPES:
        return np.take(data[0], data[1], axis=op.options.axis)
    if name == "CAST" and out.dtype in _INTEGER_TYPES and ins[0].dtype in _INTEGER_TYPES:
        return data[0].astype(NUMPY_TYPES[out.dtype])
    if name in ("ADD", "SUB", "MUL") and out.dtype in _INTEGER_TYPES and \
            all(x.dtype == out.dtype for x in ins) and not op.options.fusedActivationFunction:
        fn = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[name]
        return fn(data[0], data[1]).astype(NUMPY_TYPES[out.dtype])
    return None


def fold_constants(graph):
    """Evaluates foldable ops in order, stores their outputs as constant data and removes
    them from graph.ops; returns the folded ops."""
    folded, kept = [], []
    for op in graph.ops:
        value = _evaluate(op, graph)
        out = graph.tensors[op.outputs[0]] if op.outputs else None
        if value is None or out is None or op.outputs[0] in graph.outputs:
            kept.append(op)
            continue
        value = np.asarray(value).astype(NUMPY_TYPES.get(out.dtype, value.dtype))
        if out.shape and tuple(value.shape) != tuple(out.shape):
            if value.size != out.size:
                kept.append(op)
                continue
            value = value.reshape(out.shape)
        out.data = value
        folded.append(op)
    graph.ops = kept
    return folded
