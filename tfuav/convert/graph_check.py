"""Checks that an int8 TFLite graph is what a microcontroller should run.

(a) nothing computes in float (QUANTIZE/DEQUANTIZE only at the graph edges, and only with
    float_io); (b) no BatchNorm survived as a MUL/ADD; (c) no activation left unfused after an
    op that could carry it; (d) no SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND (dilated depthwise
    convolutions lowered the slow way).
"""
import re

from tfuav.convert.inspect_tflite import (fused_activation, load_model, op_name, tensor_name,
                                          type_name)
from tfuav.errors import TfuavError

FLOAT_TYPES = {"float32", "float16", "float64", "bfloat16"}
BATCHNORM_RE = re.compile(r"batch_normalization|fusedbatchnorm|batchnorm", re.IGNORECASE)
ACTIVATION_OPS = {"RELU", "RELU6", "RELU_N1_TO_1"}
FUSABLE_PRODUCERS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "SUB",
                     "CONCATENATION", "AVERAGE_POOL_2D", "MAX_POOL_2D", "TRANSPOSE_CONV"}
SPACE_BATCH_OPS = {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}


class GraphCheckError(TfuavError):
    """The converted graph contains something the int8 microcontroller path must not have."""


def _problems(model_bytes, float_io):
    """Yield (op_index, op_name, tensor_name, message) in op order."""
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    tensors = sg.tensors
    ops = list(sg.operators or [])
    names = [op_name(model, op) for op in ops]
    graph_inputs = set(int(i) for i in (sg.inputs if sg.inputs is not None else []))
    graph_outputs = set(int(i) for i in (sg.outputs if sg.outputs is not None else []))
    edge = graph_inputs | graph_outputs

    producer, consumers = {}, {}
    for i, op in enumerate(ops):
        for t in op.outputs if op.outputs is not None else []:
            producer[int(t)] = i
        for t in op.inputs if op.inputs is not None else []:
            if t >= 0:
                consumers.setdefault(int(t), []).append(i)

    def tname(t):
        return tensor_name(tensors[t])

    def ttype(t):
        return type_name(tensors[t])

    for i, (op, name) in enumerate(zip(ops, names)):
        ins = [int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0]
        outs = [int(t) for t in (op.outputs if op.outputs is not None else [])]

        # (d) dilated depthwise lowered through space-to-batch
        if name in SPACE_BATCH_OPS:
            yield (i, name, tname(outs[0]) if outs else "?",
                   "dilated convolution lowered to SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND "
                   "(dilated depthwise convolutions must reach TFLite natively: use "
                   "tfuav.models.layers.DilatedDepthwiseConv2D, not Keras "
                   "DepthwiseConv2D(dilation_rate>1))")

        # (a) float computation
        if name == "QUANTIZE":
            src, dst = ins[0], outs[0]
            if ttype(src) in FLOAT_TYPES:
                if not (float_io and src in graph_inputs):
                    yield (i, name, tname(src),
                           f"QUANTIZE from {ttype(src)} inside the graph (float computation "
                           f"before it{'' if float_io else '; int8 I/O expected'})")
                    continue
            # int8 -> int8 requantize is a pure integer op: fine
        elif name == "DEQUANTIZE":
            src, dst = ins[0], outs[0]
            if not (float_io and dst in graph_outputs):
                yield (i, name, tname(dst),
                       f"DEQUANTIZE to {ttype(dst)} inside the graph (what follows computes "
                       f"in float{'' if float_io else '; int8 I/O expected'})")
                continue
        else:
            for t in ins + outs:
                if ttype(t) in FLOAT_TYPES and not (float_io and t in edge):
                    yield (i, name, tname(t), f"computes in float ({ttype(t)} tensor)")
                    break

        # (b) BatchNorm that did not fold into a convolution
        if name in ("MUL", "ADD") and outs and BATCHNORM_RE.search(tname(outs[0])):
            yield (i, name, tname(outs[0]),
                   "BatchNorm survived as a standalone " + name + " (it did not fold into a "
                   "convolution: put BatchNorm directly after a Conv/DepthwiseConv/Dense)")

        # (c) activation that could have been fused into its producer
        if name in ACTIVATION_OPS and ins:
            src = ins[0]
            p = producer.get(src)
            if (p is not None and names[p] in FUSABLE_PRODUCERS
                    and consumers.get(src, []) == [i] and src not in graph_outputs
                    and fused_activation(ops[p]) in (None, "NONE")):
                yield (i, name, tname(src),
                       f"standalone {name} after op {p} {names[p]}, which could carry it as a "
                       f"fused activation")


def check_graph(model_bytes, float_io=False):
    """List of problems (one line each, 'op <index> <NAME> (tensor '<name>'): ...'); empty if ok."""
    return [f"op {i} {name} (tensor '{tensor}'): {message}"
            for i, name, tensor, message in _problems(model_bytes, float_io)]


def assert_graph_ok(model_bytes, float_io=False):
    """Raise GraphCheckError naming the first offending op and tensor."""
    problems = check_graph(model_bytes, float_io=float_io)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GraphCheckError(f"graph check failed: {problems[0]}{more}")
