"""Scratch memory CMSIS-NN kernels request from the TFLM arena, beyond what the reference
kernels (which the host's TFLM wheel runs) need. Sizes follow the CMSIS-NN *_get_buffer_size
rules for cores with the DSP extension and no MVE (Cortex-M4/M7), taking the larger branch
wherever the kernel choice depends on details (e.g. the 1x1 fast path needs none)."""
from tfuav.convert.inspect_tflite import load_model, op_name

INT16, INT32 = 2, 4


def _shape(sg, index):
    return [int(d) for d in sg.tensors[index].shape]


def op_scratch_bytes(name, sg, op):
    if name == "CONV_2D":            # im2col of two output pixels as int16, input depth
        in_depth = _shape(sg, op.inputs[0])[-1]
        _, kh, kw, _ = _shape(sg, op.inputs[1])
        return 2 * _align4(kh * kw * in_depth) * INT16
    if name == "DEPTHWISE_CONV_2D":  # the generic optimised path buffers one window as int16
        in_depth = _shape(sg, op.inputs[0])[-1]
        _, kh, kw, _ = _shape(sg, op.inputs[1])
        return in_depth * kh * kw * INT16
    if name == "AVERAGE_POOL_2D":    # int32 sums over the channels
        return _shape(sg, op.outputs[0])[-1] * INT32
    if name == "FULLY_CONNECTED":    # per-tensor requantization table when run as a 1x1 conv
        return 2 * _shape(sg, op.outputs[0])[-1] * INT32
    return 0


def _align4(n):
    return -(-n // 4) * 4


def largest_cmsis_nn_scratch(model_bytes):
    """Bytes of the largest scratch buffer any op of the model asks for under CMSIS-NN. Scratch
    buffers live only while their op runs, so the planner needs room for one at a time."""
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    return max((op_scratch_bytes(op_name(model, op), sg, op) for op in sg.operators or []),
               default=0)
