"""Lowering of the element-wise ops: two-input arithmetic with broadcasting (ADD, SUB, MUL,
DIV, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM) and one-input ops as 256-entry tables (LOGISTIC,
TANH, HARD_SWISH, RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, QUANTIZE, RSQRT)."""
import numpy as np

from tfuav.export.native import luts
from tfuav.export.native.fixedpoint import f32, mbqm, quantize_multiplier
from tfuav.export.native.ops_conv import int8_activation
from tfuav.export.native.program import Ptr, Step, activation_range, unsupported

# ADD/SUB with at least this many outputs rescale their inputs through two 256-entry int32
# tables (2 KB of flash) instead of two multiplications per element.
ADD_TABLE_MIN_ELEMENTS = 1024


def broadcast_layout(op, shape1, shape2, out_shape):
    """(dims, strides1, strides2), 4 entries each, visiting out_shape in order; strides are in
    elements and 0 where an input is broadcast. Adjacent dimensions are merged where both
    inputs allow it."""
    rank = len(out_shape)
    s1 = [1] * (rank - len(shape1)) + list(shape1)
    s2 = [1] * (rank - len(shape2)) + list(shape2)

    def strides(shape):
        st, acc = [0] * rank, 1
        for i in range(rank - 1, -1, -1):
            st[i] = acc if shape[i] != 1 else 0
            acc *= shape[i]
        return st
    st1, st2 = strides(s1), strides(s2)
    dims, a, b = [], [], []
    for d, x, y in zip(out_shape, st1, st2):
        if d == 1:
            continue
        if dims and a[-1] == x * d and b[-1] == y * d:
            dims[-1] *= d
            a[-1], b[-1] = x, y
            continue
        dims.append(d)
        a.append(x)
        b.append(y)
    if len(dims) > 4:
        raise unsupported(op, f"broadcast of {tuple(shape1)} with {tuple(shape2)} needs "
                              f"{len(dims)} dimensions (at most 4)")
    pad = 4 - len(dims)
    return [1] * pad + dims, [0] * pad + a, [0] * pad + b


def _binary_tensors(op, graph):
    a = int8_activation(op, graph.tensors[op.inputs[0]], "the first input")
    b = int8_activation(op, graph.tensors[op.inputs[1]], "the second input")
    out = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    return a, b, out


def _binary_step(op, graph, func, fields):
    a, b, out = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dims, s1, s2 = broadcast_layout(op, a.shape, b.shape, out.shape)
    step = Step(op, reads=[op.inputs[0], op.inputs[1]], writes=[op.outputs[0]])
    base = {"dims": dims, "stride1": s1, "stride2": s2, "in1_offset": 0, "in2_offset": 0,
            "left_shift": 0, "mult1": 0, "shift1": 0, "mult2": 0, "shift2": 0, "mult": 0,
            "shift": 0, "out_zp": 0, "act_min": -128, "act_max": 127, "table1": "NULL",
            "table2": "NULL"}
    base.update(fields)
    if "table1" in fields:
        base["table1"] = step.const("table1", "int32_t", fields["table1"])
        base["table2"] = step.const("table2", "int32_t", fields["table2"])
    p = step.struct("tfuav_binary_t", base)
    step.call(func, p, Ptr(op.inputs[0]), Ptr(op.inputs[1]), Ptr(op.outputs[0], 0, True))
    # element i of the output reads element i of an input of the same shape
    step.inplace = [i for i, t in ((op.inputs[0], a), (op.inputs[1], b)) if t.shape == out.shape]
    return step


def lower_add_sub(op, graph, options):
    a, b, out = _binary_tensors(op, graph)
    (s1, z1), (s2, z2), (so, zo) = a.qparams(), b.qparams(), out.qparams()
    left_shift = 20
    twice_max = float(f32(2) * max(s1, s2))  # float32 in the kernel
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / float(f32(f32(1 << left_shift) * so)))
    if max(sh1, sh2, sho) > 0:
        raise unsupported(op, "an output scale that needs a rescaling factor above 1 "
                              "(the reference kernel rejects it)")
    act = activation_range(op, op.options.fusedActivationFunction, out)
    fields = {"in1_offset": -z1, "in2_offset": -z2, "left_shift": left_shift, "mult1": m1,
              "shift1": sh1, "mult2": m2, "shift2": sh2, "mult": mo, "shift": sho,
              "out_zp": zo, "act_min": act[0], "act_max": act[1]}
    if out.size >= ADD_TABLE_MIN_ELEMENTS:
        values = np.arange(256).astype(np.int8).astype(np.int64)  # index order: uint8 bits
        fields["table1"] = np.array([mbqm((v - z1) << left_shift, m1, sh1) for v in values],
                                    dtype=np.int32)
        fields["table2"] = np.array([mbqm((v - z2) << left_shift, m2, sh2) for v in values],
                                    dtype=np.int32)
    func = "tfuav_add_s8" if op.name == "ADD" else "tfuav_sub_s8"
    return _binary_step(op, graph, func, fields)


def lower_squared_difference(op, graph, options):
    a, b, out = _binary_tensors(op, graph)
    (s1, z1), (s2, z2), (so, zo) = a.qparams(), b.qparams(), out.qparams()
    left_shift = 7
    twice_max = float(f32(2) * max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max * twice_max /
                                  float(f32(f32(1 << (2 * left_shift)) * so)))
    if sho > 0:
        raise unsupported(op, "an output scale that needs a rescaling factor above 1 "
                              "(the reference kernel rejects it)")
    values = np.arange(256).astype(np.int8).astype(np.int64)
    return _binary_step(op, graph, "tfuav_squared_difference_s8", {
        "in1_offset": -z1, "in2_offset": -z2, "left_shift": left_shift, "mult1": m1,
        "shift1": sh1, "mult2": m2, "shift2": sh2, "mult": mo, "shift": sho, "out_zp": zo,
        "table1": np.array([mbqm((v - z1) << left_shift, m1, sh1) for v in values], np.int32),
        "table2": np.array([mbqm((v - z2) << left_shift, m2, sh2) for v in values], np.int32)})


def lower_mul(op, graph, options):
    a, b, out = _binary_tensors(op, graph)
    (s1, z1), (s2, z2), (so, zo) = a.qparams(), b.qparams(), out.qparams()
    m, sh = quantize_multiplier(float(f32(f32(s1 * s2) / so)))  # float32 in the kernel
    act = activation_range(op, op.options.fusedActivationFunction, out)
    return _binary_step(op, graph, "tfuav_mul_s8", {
        "in1_offset": -z1, "in2_offset": -z2, "mult": m, "shift": sh, "out_zp": zo,
        "act_min": act[0], "act_max": act[1]})


def lower_div(op, graph, options):
    a, b, out = _binary_tensors(op, graph)
    (s1, z1), (s2, z2), (so, zo) = a.qparams(), b.qparams(), out.qparams()
    m, sh = quantize_multiplier(float(f32(s1 / f32(s2 * so))))  # float32 in the kernel
    act = activation_range(op, op.options.fusedActivationFunction, out)
    return _binary_step(op, graph, "tfuav_div_s8", {
        "in1_offset": -z1, "in2_offset": -z2, "mult": m, "shift": sh, "out_zp": zo,
        "act_min": act[0], "act_max": act[1]})


def lower_min_max(op, graph, options):
    a, b, out = _binary_tensors(op, graph)
    if a.qparams() != out.qparams() or b.qparams() != out.qparams():
        raise unsupported(op, "inputs and output with different quantization")
    func = "tfuav_max_s8" if op.name == "MAXIMUM" else "tfuav_min_s8"
    return _binary_step(op, graph, func, {})


# --- one-input ops as tables -------------------------------------------------------------

def lower_table(op, graph, options):
    x = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    y = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    (si, zi), (so, zo) = x.qparams(), y.qparams()
    if op.name == "LOGISTIC":
        if float(so) != 1.0 / 256:
            raise unsupported(op, "the int8 output must have scale 1/256")
        table = luts.logistic_table(si, zi, so, zo)
    elif op.name == "TANH":
        table = luts.tanh_table(si, zi, so, zo)
    elif op.name == "HARD_SWISH":
        table = luts.hard_swish_table(si, zi, so, zo)
    elif op.name == "QUANTIZE":
        table = luts.requantize_table(si, zi, so, zo)
    elif op.name == "RELU":
        table = luts.relu_table(si, zi, so, zo, 0.0, None)
    elif op.name == "RELU6":
        table = luts.relu_table(si, zi, so, zo, 0.0, 6.0)
    elif op.name == "RELU_N1_TO_1":
        table = luts.relu_table(si, zi, so, zo, -1.0, 1.0)
    elif op.name == "LEAKY_RELU":
        table = luts.leaky_relu_table(si, zi, so, zo, op.options.alpha)
    elif op.name == "RSQRT":
        table = luts.rsqrt_table(si, zi, so, zo)
    else:  # pragma: no cover - dispatch guarantees the names above
        raise unsupported(op, "no table")
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    name = step.const("table", "int8_t", table)
    step.call("tfuav_lut_s8", name, y.size, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    step.inplace = [op.inputs[0]]
    return step
