"""Native engine, one kernel at a time: small int8 models of one op (random shapes,
quantization and weights per case) compiled to C with host gcc -Wall -Wextra -Werror, run on
random inputs, and compared byte for byte with the TFLite reference kernels (BUILTIN_REF)."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import zlib

import numpy as np
import pytest
from test_native_support import (ModelBuilder, build_kernel_archive, host_executable, options,
                                 random_int8, reference_outputs, run_executable)

from tfuav.export.native import compile_model

RUNS = 6
SAME, VALID = 0, 1


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_kernel_archive(tmp_path_factory.mktemp("native_lib"))


def check_model(model_bytes, archive, workdir, input_shapes, rng, runs=RUNS, inputs=None):
    """Compile, run `runs` random inputs (or the given input rows) through both runtimes and
    require identical bytes; returns the reference outputs."""
    compiled = compile_model(model_bytes, "m")
    exe = host_executable(compiled, workdir, archive)
    rows = inputs or [[random_int8(s, rng) for s in input_shapes] for _ in range(runs)]
    got = run_executable(exe, rows)
    refs = []
    for row, ours in zip(rows, got):
        ref = np.concatenate([o.reshape(-1) for o in reference_outputs(model_bytes, row)])
        assert ref.dtype == np.int8
        mismatch = np.flatnonzero(ref != ours)
        assert mismatch.size == 0, (
            f"{mismatch.size} of {ref.size} bytes differ, first at {mismatch[:5]}: "
            f"reference {ref[mismatch[:5]]} native {ours[mismatch[:5]]}")
        refs.append(ref)
    return refs


def act_scale(rng):
    return float(rng.uniform(0.01, 0.08)), int(rng.integers(-30, 30))


def out_size(size, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    return -(-size // stride) if padding == SAME else (size - eff + stride) // stride


def out_quant(rng, in_scale, w_scale, depth):
    """An output scale that keeps most accumulators inside the int8 range."""
    std = np.sqrt(depth) * 74.0 * 74.0 * in_scale * float(np.mean(w_scale))
    return float(std * rng.uniform(1.5, 4.0) / 127.0), int(rng.integers(-20, 20))


# --- convolutions ---------------------------------------------------------------------------

CONV_CASES = {
    # name: (in_shape, out_c, k, stride, dilation, padding, activation, groups)
    "3x3_s1_same_relu6": ((1, 9, 11, 5), 6, (3, 3), 1, 1, SAME, "RELU6", 1),
    "3x3_s2_same": ((1, 10, 9, 3), 8, (3, 3), 2, 1, SAME, None, 1),
    "3x3_s2_valid_relu": ((1, 11, 12, 4), 7, (3, 3), 2, 1, VALID, "RELU", 1),
    "5x3_dil2_same": ((1, 12, 10, 3), 5, (5, 3), 1, 2, SAME, None, 1),
    "3x3_dil3_valid": ((1, 13, 13, 2), 3, (3, 3), 1, 3, VALID, "RELU_N1_TO_1", 1),
    "1x1_s1": ((1, 7, 5, 19), 13, (1, 1), 1, 1, SAME, "RELU6", 1),
    "1x1_s2": ((1, 9, 7, 8), 9, (1, 1), 2, 1, VALID, None, 1),
    "1x1_groups4": ((1, 6, 6, 16), 12, (1, 1), 1, 1, SAME, "RELU6", 4),
    "3x3_groups2": ((1, 8, 7, 6), 4, (3, 3), 1, 1, SAME, None, 2),
    "2x2_s2_batch2": ((2, 8, 8, 3), 4, (2, 2), 2, 1, VALID, None, 1),
    "1x1_deep": ((1, 4, 4, 300), 37, (1, 1), 1, 1, SAME, None, 1),
}


def conv_model(rng, in_shape, out_c, k, stride, dil, padding, act, groups, per_channel=True):
    n, h, w, c = in_shape
    kin = c // groups
    in_s, in_zp = act_scale(rng)
    w_scale = rng.uniform(0.002, 0.02, out_c if per_channel else 1)
    weights = rng.integers(-127, 128, (out_c, k[0], k[1], kin))
    bias = rng.integers(-3000, 3000, out_c)
    oh, ow = out_size(h, k[0], stride, dil, padding), out_size(w, k[1], stride, dil, padding)
    o_s, o_zp = out_quant(rng, in_s, w_scale, k[0] * k[1] * kin)
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=in_s, zero_point=in_zp)
    wt = b.tensor(weights.shape, scale=w_scale, zero_point=0, data=weights)
    bt = b.tensor([out_c], "int32", scale=in_s * w_scale, zero_point=0, data=bias)
    y = b.tensor((n, oh, ow, out_c), scale=o_s, zero_point=o_zp)
    b.op("CONV_2D", [x, wt, bt], [y], options("Conv2D", padding=padding, strideW=stride,
                                               strideH=stride, dilationWFactor=dil,
                                               dilationHFactor=dil, activation=act))
    return b.build([x], [y])


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d(case, archive, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    spec = CONV_CASES[case]
    check_model(conv_model(rng, *spec), archive, tmp_path, [spec[0]], rng)


def test_conv2d_per_tensor_weights(archive, tmp_path):
    rng = np.random.default_rng(1)
    model = conv_model(rng, (1, 6, 6, 4), 5, (3, 3), 1, 1, SAME, None, 1, per_channel=False)
    check_model(model, archive, tmp_path, [(1, 6, 6, 4)], rng)


DW_CASES = {
    # name: (in_shape, k, stride, dilation, padding, multiplier, activation)
    "3x3_s1_same_relu6": ((1, 9, 8, 9), (3, 3), 1, 1, SAME, 1, "RELU6"),
    "3x3_s2_same": ((1, 11, 10, 8), (3, 3), 2, 1, SAME, 1, None),
    "3x3_s2_valid": ((1, 10, 11, 5), (3, 3), 2, 1, VALID, 1, "RELU"),
    "3x3_dil2_same": ((1, 12, 12, 7), (3, 3), 1, 2, SAME, 1, None),
    "3x3_dil3_same_relu6": ((1, 13, 11, 4), (3, 3), 1, 3, SAME, 1, "RELU6"),
    "5x5_s1_same": ((1, 7, 9, 6), (5, 5), 1, 1, SAME, 1, None),
    "2x3_valid": ((1, 6, 7, 3), (2, 3), 1, 1, VALID, 1, None),
    "3x3_mult2": ((1, 7, 7, 3), (3, 3), 1, 1, SAME, 2, None),
    "3x3_mult3_s2": ((1, 8, 9, 2), (3, 3), 2, 1, SAME, 3, "RELU6"),
    "3x3_tiny_map": ((1, 2, 3, 16), (3, 3), 1, 1, SAME, 1, None),
}


def depthwise_model(rng, in_shape, k, stride, dil, padding, mult, act):
    n, h, w, c = in_shape
    oc = c * mult
    in_s, in_zp = act_scale(rng)
    w_scale = rng.uniform(0.002, 0.02, oc)
    weights = rng.integers(-127, 128, (1, k[0], k[1], oc))
    bias = rng.integers(-3000, 3000, oc)
    oh, ow = out_size(h, k[0], stride, dil, padding), out_size(w, k[1], stride, dil, padding)
    o_s, o_zp = out_quant(rng, in_s, w_scale, k[0] * k[1])
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=in_s, zero_point=in_zp)
    wt = b.tensor(weights.shape, scale=w_scale, zero_point=0, data=weights, axis=3)
    bt = b.tensor([oc], "int32", scale=in_s * w_scale, zero_point=0, data=bias)
    y = b.tensor((n, oh, ow, oc), scale=o_s, zero_point=o_zp)
    b.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y],
         options("DepthwiseConv2D", padding=padding, strideW=stride, strideH=stride,
                 depthMultiplier=mult, dilationWFactor=dil, dilationHFactor=dil, activation=act))
    return b.build([x], [y])


@pytest.mark.parametrize("case", sorted(DW_CASES))
def test_depthwise_conv2d(case, archive, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    spec = DW_CASES[case]
    check_model(depthwise_model(rng, *spec), archive, tmp_path, [spec[0]], rng)


@pytest.mark.parametrize("per_channel,act,in_shape", [
    (False, None, (3, 40)), (True, "RELU", (1, 2, 3, 7)), (False, "RELU6", (2, 33))])
def test_fully_connected(per_channel, act, in_shape, archive, tmp_path):
    rng = np.random.default_rng(len(in_shape) * 7 + int(per_channel))
    depth = in_shape[-1] if len(in_shape) == 2 else int(np.prod(in_shape[1:]))
    rows = int(np.prod(in_shape)) // depth
    units = 11
    in_s, in_zp = act_scale(rng)
    w_scale = rng.uniform(0.002, 0.02, units if per_channel else 1)
    weights = rng.integers(-127, 128, (units, depth))
    o_s, o_zp = out_quant(rng, in_s, w_scale, depth)
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=in_s, zero_point=in_zp)
    wt = b.tensor(weights.shape, scale=w_scale, zero_point=0, data=weights)
    bt = b.tensor([units], "int32", scale=in_s * w_scale, data=rng.integers(-3000, 3000, units))
    y = b.tensor((rows, units), scale=o_s, zero_point=o_zp)
    b.op("FULLY_CONNECTED", [x, wt, bt], [y], options("FullyConnected", activation=act))
    check_model(b.build([x], [y]), archive, tmp_path, [in_shape], rng, runs=10)


def test_transpose_conv(archive, tmp_path):
    rng = np.random.default_rng(5)
    in_shape, oc, k, stride = (1, 5, 4, 6), 4, 3, 2
    in_s, in_zp = act_scale(rng)
    w_scale = rng.uniform(0.002, 0.02, oc)
    weights = rng.integers(-127, 128, (oc, k, k, in_shape[3]))
    o_s, o_zp = out_quant(rng, in_s, w_scale, k * in_shape[3])
    out_shape = (1, 10, 8, oc)
    b = ModelBuilder()
    shape_t = b.const(np.array(out_shape, np.int32))
    wt = b.tensor(weights.shape, scale=w_scale, zero_point=0, data=weights)
    x = b.tensor(in_shape, scale=in_s, zero_point=in_zp)
    bt = b.tensor([oc], "int32", scale=in_s * w_scale, data=rng.integers(-3000, 3000, oc))
    y = b.tensor(out_shape, scale=o_s, zero_point=o_zp)
    b.op("TRANSPOSE_CONV", [shape_t, wt, x, bt], [y],
         options("TransposeConv", padding=SAME, strideW=stride, strideH=stride), version=3)
    check_model(b.build([x], [y]), archive, tmp_path, [in_shape], rng)


@pytest.mark.parametrize("adj_x,adj_y", [(False, False), (True, False), (False, True)])
def test_batch_matmul(adj_x, adj_y, archive, tmp_path):
    rng = np.random.default_rng(int(adj_x) * 2 + int(adj_y))
    rows, depth, cols = 5, 12, 7
    a_shape = (2, depth, rows) if adj_x else (2, rows, depth)
    b_shape = (2, cols, depth) if adj_y else (2, depth, cols)
    (sa, za), (sb, zb) = act_scale(rng), act_scale(rng)
    o_s, o_zp = out_quant(rng, sa, [sb], depth)
    b = ModelBuilder()
    x = b.tensor(a_shape, scale=sa, zero_point=za)
    w = b.tensor(b_shape, scale=sb, zero_point=zb)
    y = b.tensor((2, rows, cols), scale=o_s, zero_point=o_zp)
    b.op("BATCH_MATMUL", [x, w], [y], options("BatchMatMul", adjX=adj_x, adjY=adj_y), version=4)
    check_model(b.build([x, w], [y]), archive, tmp_path, [a_shape, b_shape], rng)


# --- element-wise ----------------------------------------------------------------------------

BINARY_CASES = {
    # name: (op, shape1, shape2, activation)
    "add_same": ("ADD", (1, 5, 6, 7), (1, 5, 6, 7), "RELU6"),
    "add_channel_broadcast": ("ADD", (1, 4, 5, 6), (1, 1, 1, 6), None),
    "add_large_table": ("ADD", (1, 16, 16, 8), (1, 16, 16, 8), None),
    "add_scalar_first": ("ADD", (1, 1, 1, 1), (1, 3, 4, 5), "RELU"),
    "sub_broadcast": ("SUB", (1, 3, 4, 5), (1, 3, 1, 5), None),
    "sub_large_table": ("SUB", (2, 30, 20), (2, 30, 20), None),
    "mul_same": ("MUL", (2, 3, 11), (2, 3, 11), None),
    "mul_channel_broadcast": ("MUL", (1, 6, 5, 8), (1, 1, 1, 8), "RELU6"),
    "div_scalar": ("DIV", (1, 24), (1, 1), None),
    "div_same": ("DIV", (3, 7), (3, 7), None),
    "squared_difference": ("SQUARED_DIFFERENCE", (1, 4, 4, 6), (1, 1, 1, 6), None),
    "squared_difference_large": ("SQUARED_DIFFERENCE", (1, 16, 16, 4), (1, 16, 16, 4), None),
    "maximum": ("MAXIMUM", (1, 4, 4, 3), (1, 1, 4, 3), None),
    "minimum": ("MINIMUM", (2, 5), (2, 5), None),
}


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_binary(case, archive, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    name, s1, s2, act = BINARY_CASES[case]
    out_shape = np.broadcast_shapes(s1, s2)
    (a_s, a_z), (b_s, b_z), (o_s, o_z) = act_scale(rng), act_scale(rng), act_scale(rng)
    if name in ("MAXIMUM", "MINIMUM"):
        (b_s, b_z), (o_s, o_z) = (a_s, a_z), (a_s, a_z)
    if name == "MUL":
        o_s = a_s * b_s * rng.uniform(20, 60)
    if name == "DIV":
        o_s = a_s / b_s * rng.uniform(0.02, 0.1)
    if name == "SQUARED_DIFFERENCE":
        o_s = max(a_s, b_s) ** 2 * rng.uniform(20, 200)
    b = ModelBuilder()
    x = b.tensor(s1, scale=a_s, zero_point=a_z)
    z = b.tensor(s2, scale=b_s, zero_point=b_z)
    y = b.tensor(out_shape, scale=o_s, zero_point=o_z)
    kind = {"MAXIMUM": "MaximumMinimum", "MINIMUM": "MaximumMinimum",
            "SQUARED_DIFFERENCE": "SquaredDifference"}.get(name, name.title())
    opts = options(kind) if kind in ("MaximumMinimum", "SquaredDifference") else \
        options(kind, activation=act)
    b.op(name, [x, z], [y], opts, version=2)
    rows = None
    if name == "DIV":  # no zero divisors: the reference kernel checks for them
        rows = []
        for _ in range(RUNS):
            den = random_int8(s2, rng)
            den[den == b_z] = np.int8(b_z + 1 if b_z < 127 else b_z - 1)
            rows.append([random_int8(s1, rng), den])
    check_model(b.build([x, z], [y]), archive, tmp_path, [s1, s2], rng, inputs=rows)


def test_add_with_constant_operand(archive, tmp_path):
    rng = np.random.default_rng(3)
    (a_s, a_z), (b_s, b_z), (o_s, o_z) = act_scale(rng), act_scale(rng), act_scale(rng)
    b = ModelBuilder()
    x = b.tensor((1, 3, 3, 4), scale=a_s, zero_point=a_z)
    c = b.tensor((1, 1, 1, 4), scale=b_s, zero_point=b_z, data=random_int8((1, 1, 1, 4), rng))
    y = b.tensor((1, 3, 3, 4), scale=o_s, zero_point=o_z)
    b.op("ADD", [x, c], [y], options("Add"))
    check_model(b.build([x], [y]), archive, tmp_path, [(1, 3, 3, 4)], rng)


def all_values():
    return [[np.arange(-128, 128, dtype=np.int8).reshape(1, 256)]]


UNARY_CASES = ["LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU",
               "QUANTIZE", "RSQRT"]


@pytest.mark.parametrize("name", UNARY_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unary_tables_over_all_256_inputs(name, seed, archive, tmp_path):
    rng = np.random.default_rng(seed * 100 + UNARY_CASES.index(name))
    in_s, in_z = float(rng.uniform(0.005, 0.2)), int(rng.integers(-100, 100))
    out_s, out_z = float(rng.uniform(0.005, 0.1)), int(rng.integers(-100, 100))
    if name == "LOGISTIC":
        out_s, out_z = 1.0 / 256, -128
    if name == "TANH":
        out_s, out_z = 1.0 / 128, 0
    opts = {"LEAKY_RELU": options("LeakyRelu", alpha=float(rng.uniform(-0.5, 0.5)))}.get(name)
    b = ModelBuilder()
    x = b.tensor((1, 256), scale=in_s, zero_point=in_z)
    y = b.tensor((1, 256), scale=out_s, zero_point=out_z)
    b.op(name, [x], [y], opts)
    inputs = all_values()
    if name == "RSQRT":  # only defined for inputs at or above the zero point
        in_z = min(in_z, 0)
        x_all = np.arange(-128, 128).reshape(1, 256)
        inputs = [[np.where(x_all < in_z, in_z, x_all).astype(np.int8)]]
        b = ModelBuilder()
        x = b.tensor((1, 256), scale=in_s, zero_point=in_z)
        y = b.tensor((1, 256), scale=out_s, zero_point=out_z)
        b.op(name, [x], [y])
    refs = check_model(b.build([x], [y]), archive, tmp_path, [(1, 256)], rng, inputs=inputs)
    assert len(np.unique(refs[0])) > 8  # the table is not trivially constant


# --- pooling, reductions, normalizations -------------------------------------------------------

@pytest.mark.parametrize("name,k,stride,padding,act", [
    ("MAX_POOL_2D", (2, 2), 2, VALID, None), ("MAX_POOL_2D", (3, 3), 2, SAME, "RELU6"),
    ("AVERAGE_POOL_2D", (3, 3), 1, SAME, None), ("AVERAGE_POOL_2D", (2, 3), 2, VALID, "RELU"),
    ("AVERAGE_POOL_2D", (7, 6), 1, VALID, None)])
def test_pooling(name, k, stride, padding, act, archive, tmp_path):
    rng = np.random.default_rng(k[0] * 10 + k[1] + stride)
    in_shape = (1, 7, 6, 5)
    s, z = act_scale(rng)
    oh, ow = out_size(7, k[0], stride, 1, padding), out_size(6, k[1], stride, 1, padding)
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=s, zero_point=z)
    y = b.tensor((1, oh, ow, 5), scale=s, zero_point=z)
    b.op(name, [x], [y], options("Pool2D", padding=padding, strideW=stride, strideH=stride,
                                 filterWidth=k[1], filterHeight=k[0], activation=act), version=2)
    check_model(b.build([x], [y]), archive, tmp_path, [in_shape], rng)


@pytest.mark.parametrize("in_shape,axes,keep", [
    ((1, 5, 6, 7), [1, 2], True), ((1, 9, 33), [-1], False), ((1, 9, 33), [1], True),
    ((2, 3, 4, 5), [3], False), ((1, 40), [1], True), ((1, 16, 4, 8), [1, 3], True),
    ((2, 3, 4, 5), [0, 2], False)])
def test_mean(in_shape, axes, keep, archive, tmp_path):
    rng = np.random.default_rng(len(in_shape) + sum(axes) + 10)
    (s, z), (so, zo) = act_scale(rng), act_scale(rng)
    rank = len(in_shape)
    norm = [a % rank for a in axes]
    out_shape = [1 if k in norm else d for k, d in enumerate(in_shape)] if keep else \
        [d for k, d in enumerate(in_shape) if k not in norm]
    b = ModelBuilder()
    x = b.tensor(in_shape, scale=s, zero_point=z)
    ax = b.const(np.array(axes, np.int32))
    y = b.tensor(out_shape, scale=so, zero_point=zo)
    b.op("MEAN", [x, ax], [y], options("Reducer", keepDims=keep), version=2)
    check_model(b.build([x], [y]), archive, tmp_path, [in_shape], rng)


@pytest.mark.parametrize("depth,beta", [(10, 1.0), (4, 1.0), (37, 0.7)])
def test_softmax(depth, beta, archive, tmp_path):
    rng = np.random.default_rng(depth)
    s, z = float(rng.uniform(0.02, 0.2)), int(rng.integers(-20, 20))
    b = ModelBuilder()
    x = b.tensor((3, depth), scale=s, zero_point=z)
    y = b.tensor((3, depth), scale=1.0 / 256, zero_point=-128)
    b.op("SOFTMAX", [x], [y], options("Softmax", beta=beta), version=2)
    check_model(b.build([x], [y]), archive, tmp_path, [(3, depth)], rng)


def test_l2_normalization(archive, tmp_path):
    rng = np.random.default_rng(2)
    s, z = act_scale(rng)
    b = ModelBuilder()
    x = b.tensor((1, 6, 45), scale=s, zero_point=z)
    y = b.tensor((1, 6, 45), scale=1.0 / 128, zero_point=0)
    b.op("L2_NORMALIZATION", [x], [y], options("L2Norm"), version=2)
    rows = [[random_int8((1, 6, 45), rng)] for _ in range(RUNS)]
    rows.append([np.full((1, 6, 45), z, np.int8)])  # all-zero rows: the 0 norm special case
    check_model(b.build([x], [y]), archive, tmp_path, [(1, 6, 45)], rng, inputs=rows)


# --- data movement -------------------------------------------------------------------------------

def _quant_pair(rng):
    s, z = act_scale(rng)
    return {"scale": s, "zero_point": z}


def test_concatenation_split_and_slices(archive, tmp_path):
    """CONCATENATION on channels and rows, SPLIT, SPLIT_V, SLICE, STRIDED_SLICE (with masks
    and shrink), TRANSPOSE, RESHAPE and GATHER on one graph with several outputs."""
    rng = np.random.default_rng(11)
    q = _quant_pair(rng)
    b = ModelBuilder()
    a = b.tensor((1, 4, 5, 3), **q)
    c = b.tensor((1, 4, 5, 6), **q)
    cat = b.tensor((1, 4, 5, 9), **q)
    b.op("CONCATENATION", [a, c], [cat], options("Concatenation", axis=3))
    rows = b.tensor((1, 8, 5, 3), **q)
    b.op("CONCATENATION", [a, a], [rows], options("Concatenation", axis=1))
    parts = [b.tensor((1, 4, 5, 3), **q) for _ in range(3)]
    b.op("SPLIT", [b.const(np.array(3, np.int32)), cat], parts, options("Split", numSplits=3))
    v_parts = [b.tensor((1, 4, 2, 9), **q), b.tensor((1, 4, 3, 9), **q)]
    b.op("SPLIT_V", [cat, b.const(np.array([2, -1], np.int32)), b.const(np.array(2, np.int32))],
         v_parts, options("SplitV", numSplits=2), version=2)
    sl = b.tensor((1, 2, 3, 4), **q)
    b.op("SLICE", [cat, b.const(np.array([0, 1, 2, 3], np.int32)),
                   b.const(np.array([1, 2, -1, 4], np.int32))], [sl], version=2)
    ss = b.tensor((1, 3, 3), **q)
    b.op("STRIDED_SLICE", [rows, b.const(np.array([0, 1, 0, 2], np.int32)),
                           b.const(np.array([1, 8, 5, 3], np.int32)),
                           b.const(np.array([1, 3, 2, 1], np.int32))], [ss],
         options("StridedSlice", beginMask=4, endMask=0, shrinkAxisMask=8), version=2)
    tr = b.tensor((1, 9, 4, 5), **q)
    b.op("TRANSPOSE", [cat, b.const(np.array([0, 3, 1, 2], np.int32))], [tr], version=2)
    rs = b.tensor((1, 20, 9), **q)
    b.op("RESHAPE", [cat, b.const(np.array([1, 20, 9], np.int32))], [rs],
         options("Reshape", newShape=[1, 20, 9]))
    ga = b.tensor((1, 20, 5), **q)
    b.op("GATHER", [rs, b.const(np.array([8, 0, 3, 3, 1], np.int32))], [ga],
         options("Gather", axis=2), version=2)
    model = b.build([a, c], [cat, rows] + parts + v_parts + [sl, ss, tr, ga])
    check_model(model, archive, tmp_path, [(1, 4, 5, 3), (1, 4, 5, 6)], rng)


@pytest.mark.parametrize("name", ["PAD", "PADV2"])
def test_pad(name, archive, tmp_path):
    rng = np.random.default_rng(len(name))
    q = _quant_pair(rng)
    b = ModelBuilder()
    x = b.tensor((1, 4, 5, 3), **q)
    pads = b.const(np.array([[0, 0], [1, 2], [0, 3], [1, 0]], np.int32))
    y = b.tensor((1, 7, 8, 4), **q)
    inputs = [x, pads]
    if name == "PADV2":
        inputs.append(b.tensor((1,), data=np.array([-77], np.int8), **q))
    b.op(name, inputs, [y], version=2)
    check_model(b.build([x], [y]), archive, tmp_path, [(1, 4, 5, 3)], rng)


@pytest.mark.parametrize("align,half", [(False, False), (True, False), (False, True)])
def test_resize_nearest_neighbor(align, half, archive, tmp_path):
    rng = np.random.default_rng(int(align) + 2 * int(half))
    q = _quant_pair(rng)
    b = ModelBuilder()
    x = b.tensor((1, 3, 5, 2), **q)
    y = b.tensor((1, 7, 8, 2), **q)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, b.const(np.array([7, 8], np.int32))], [y],
         options("ResizeNearestNeighbor", alignCorners=align, halfPixelCenters=half), version=3)
    check_model(b.build([x], [y]), archive, tmp_path, [(1, 3, 5, 2)], rng)


@pytest.mark.parametrize("conv,pad_value,fused", [
    ("CONV_2D", None, True), ("DEPTHWISE_CONV_2D", None, True),
    ("DEPTHWISE_CONV_2D", "zero_point", True), ("CONV_2D", "other", False)])
def test_pad_folded_into_convolution(conv, pad_value, fused, archive, tmp_path):
    """PAD (asymmetric, top/left 1, bottom/right 2) then a convolution: the engine reads the
    unpadded input where that is exact (pad value = zero point) and keeps the PAD otherwise."""
    rng = np.random.default_rng(len(conv) + (pad_value or "").__len__())
    in_s, in_zp = act_scale(rng)
    b = ModelBuilder()
    x = b.tensor((1, 9, 8, 4), scale=in_s, zero_point=in_zp)
    padded = b.tensor((1, 12, 11, 4), scale=in_s, zero_point=in_zp)
    pad_inputs = [x, b.const(np.array([[0, 0], [1, 2], [1, 2], [0, 0]], np.int32))]
    name = "PAD"
    if pad_value:
        name = "PADV2"
        v = in_zp if pad_value == "zero_point" else (in_zp + 40 if in_zp < 80 else in_zp - 40)
        pad_inputs.append(b.tensor((1,), scale=in_s, zero_point=in_zp,
                                   data=np.array([v], np.int8)))
    b.op(name, pad_inputs, [padded], version=2)
    oc = 4 if conv == "DEPTHWISE_CONV_2D" else 6
    w_scale = rng.uniform(0.002, 0.02, oc)
    shape = (1, 3, 3, oc) if conv == "DEPTHWISE_CONV_2D" else (oc, 3, 3, 4)
    wt = b.tensor(shape, scale=w_scale, zero_point=0, data=rng.integers(-127, 128, shape),
                  axis=3 if conv == "DEPTHWISE_CONV_2D" else 0)
    bt = b.tensor([oc], "int32", scale=in_s * w_scale, data=rng.integers(-2000, 2000, oc))
    o_s, o_zp = out_quant(rng, in_s, w_scale, 9 * (1 if conv == "DEPTHWISE_CONV_2D" else 4))
    y = b.tensor((1, 5, 5, oc), scale=o_s, zero_point=o_zp)
    opts = options("DepthwiseConv2D", padding=VALID, strideW=2, strideH=2, depthMultiplier=1) \
        if conv == "DEPTHWISE_CONV_2D" else options("Conv2D", padding=VALID, strideW=2, strideH=2)
    b.op(conv, [padded, wt, bt], [y], opts)
    model = b.build([x], [y])
    check_model(model, archive, tmp_path, [(1, 9, 8, 4)], rng)
    compiled = compile_model(model, "m")
    assert any(f.endswith(f":{name}") for f in compiled.folded) == fused
    assert [s.op.name for s in compiled.steps] == ([conv] if fused else [name, conv])
