"""Lowering of pooling, reductions, normalizations and data movement: MAX_POOL_2D,
AVERAGE_POOL_2D, MEAN, SOFTMAX, L2_NORMALIZATION, RESHAPE (and SQUEEZE, EXPAND_DIMS), PAD,
PADV2, CONCATENATION, SPLIT, SPLIT_V, SLICE, STRIDED_SLICE, TRANSPOSE, GATHER,
RESIZE_NEAREST_NEIGHBOR.

Every pure data-movement op is described by where each output element comes from (an index
array computed with numpy) and compressed into strided block copies."""
import math

import numpy as np

from tfuav.export.native.fixedpoint import (exp_on_negative_values, f32, quantize_multiplier,
                                            round_half_away, srdhm)
from tfuav.export.native.ops_conv import int8_activation, padding
from tfuav.export.native.program import Ptr, Step, Work, activation_range, unsupported

MAX_COPIES = 64


def _const_ints(op, graph, position, what):
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    t = graph.tensors[op.inputs[position]]
    if not t.is_const:
        raise unsupported(op, f"{what} must be a constant tensor")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _same_quant(op, a, b):
    if a.dtype != "int8":
        raise unsupported(op, f"tensor type {a.dtype} (int8 only)")
    if a.scale is not None and b.scale is not None and a.qparams() != b.qparams():
        raise unsupported(op, "input and output with different quantization")


# --- strided copies ----------------------------------------------------------------------

def copy_fields(op, src, dst):
    """tfuav_copy_t fields moving src[...] -> dst[...] elementwise; src and dst are integer
    arrays of the same shape holding flat element offsets."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    keep = [k for k, d in enumerate(src.shape) if d > 1]
    src = src.reshape([src.shape[k] for k in keep]) if keep else src.reshape(())
    dst = dst.reshape(src.shape)
    dims = list(src.shape)
    zero = (0,) * len(dims)
    s_base, d_base = int(src[zero]), int(dst[zero])

    def strides(arr):
        out = []
        for k in range(len(dims)):
            idx = list(zero)
            idx[k] = 1
            out.append(int(arr[tuple(idx)]) - int(arr[zero]))
        return out
    ss, ds = strides(src), strides(dst)
    grid = np.indices(dims) if dims else np.zeros((0,))
    for arr, st, base in ((src, ss, s_base), (dst, ds, d_base)):
        predicted = base + sum(g * s for g, s in zip(grid, st)) if dims else base
        if not np.array_equal(arr, predicted):
            return None
    # merge dimensions that are contiguous in both
    md, ms, mdst = [], [], []
    for d, a, b in zip(dims, ss, ds):
        if md and ms[-1] == a * d and mdst[-1] == b * d:
            md[-1] *= d
            ms[-1], mdst[-1] = a, b
            continue
        md.append(d)
        ms.append(a)
        mdst.append(b)
    run = 1
    if md and ms[-1] == 1 and mdst[-1] == 1:
        run = md.pop()
        ms.pop()
        mdst.pop()
    if len(md) > 4:
        return None
    pad = 4 - len(md)
    return {"dims": [1] * pad + md, "src_stride": [0] * pad + ms,
            "dst_stride": [0] * pad + mdst, "src_offset": s_base, "dst_offset": d_base,
            "run": run}


def add_copies(step, op, src_tensor, dst_tensor, src, dst, suffix):
    """Calls copying src_tensor -> dst_tensor along the given index arrays; splits along the
    first axis when one strided copy cannot describe the move."""
    fields = copy_fields(op, src, dst)
    if fields is not None:
        p = step.struct("tfuav_copy_t", fields, suffix)
        step.call("tfuav_copy", p, Ptr(src_tensor), Ptr(dst_tensor, 0, True))
        return 1
    if src.ndim == 0 or src.shape[0] <= 1:
        raise unsupported(op, "a data movement that no strided copy describes")
    n = 0
    for i in range(src.shape[0]):
        n += add_copies(step, op, src_tensor, dst_tensor, src[i], dst[i], f"{suffix}_{i}")
        if n > MAX_COPIES:
            raise unsupported(op, "a data movement that needs too many strided copies")
    return n


def _flat(shape):
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


# --- data movement ops ---------------------------------------------------------------------

def lower_reshape(op, graph, options):
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    step.alias_of = op.inputs[0]
    return step


def lower_concatenation(op, graph, options):
    out = graph.tensors[op.outputs[0]]
    axis = op.options.axis % len(out.shape)
    activation = getattr(op.options, "fusedActivationFunction", 0)
    if activation:
        raise unsupported(op, "a fused activation")
    inputs = [i for i in op.inputs]
    step = Step(op, reads=list(dict.fromkeys(inputs)), writes=[op.outputs[0]])
    dst_all = _flat(out.shape)
    start = 0
    for n, i in enumerate(inputs):
        t = graph.tensors[i]
        _same_quant(op, t, out)
        size = t.shape[axis]
        index = [slice(None)] * len(out.shape)
        index[axis] = slice(start, start + size)
        add_copies(step, op, i, op.outputs[0], _flat(t.shape), dst_all[tuple(index)], f"c{n}")
        start += size
    return step


def _split_outputs(op, graph, in_index, axis, sizes):
    src = graph.tensors[in_index]
    axis %= len(src.shape)
    if sum(sizes) != src.shape[axis]:
        raise unsupported(op, f"split sizes {sizes} do not add up to {src.shape[axis]}")
    step = Step(op, reads=[in_index], writes=[o for o in op.outputs])
    src_all = _flat(src.shape)
    start = 0
    for n, (o, size) in enumerate(zip(op.outputs, sizes)):
        out = graph.tensors[o]
        _same_quant(op, src, out)
        index = [slice(None)] * len(src.shape)
        index[axis] = slice(start, start + size)
        add_copies(step, op, in_index, o, src_all[tuple(index)], _flat(out.shape), f"s{n}")
        start += size
    return step


def lower_split(op, graph, options):
    axis = _const_ints(op, graph, 0, "the axis")[0]
    src = graph.tensors[op.inputs[1]]
    n = len(op.outputs)
    dim = src.shape[axis % len(src.shape)]
    return _split_outputs(op, graph, op.inputs[1], axis, [dim // n] * n)


def lower_split_v(op, graph, options):
    sizes = _const_ints(op, graph, 1, "the split sizes")
    axis = _const_ints(op, graph, 2, "the axis")[0]
    src = graph.tensors[op.inputs[0]]
    dim = src.shape[axis % len(src.shape)]
    if -1 in sizes:
        sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    return _split_outputs(op, graph, op.inputs[0], axis, sizes)


def _gather_copy(op, graph, in_index, src_index):
    out = graph.tensors[op.outputs[0]]
    _same_quant(op, graph.tensors[in_index], out)
    step = Step(op, reads=[in_index], writes=[op.outputs[0]])
    add_copies(step, op, in_index, op.outputs[0], np.asarray(src_index).reshape(out.shape),
               _flat(out.shape), "m")
    return step


def lower_slice(op, graph, options):
    src = graph.tensors[op.inputs[0]]
    begin = _const_ints(op, graph, 1, "the begin")
    size = _const_ints(op, graph, 2, "the size")
    index = tuple(slice(b, src.shape[k] if s == -1 else b + s)
                  for k, (b, s) in enumerate(zip(begin, size)))
    return _gather_copy(op, graph, op.inputs[0], _flat(src.shape)[index])


def strided_slice_index(op, shape, begin, end, strides):
    """The numpy index STRIDED_SLICE takes (begin/end masks, shrink axes, offset mode)."""
    o = op.options
    index = []
    for k, dim in enumerate(shape):
        if k >= len(begin):
            index.append(slice(None))
            continue
        b, e, s = int(begin[k]), int(end[k]), int(strides[k])
        if getattr(o, "offset", False):
            e = b + e
        if o.shrinkAxisMask & (1 << k):
            index.append(b + dim if b < 0 else b)
            continue
        index.append(slice(None if o.beginMask & (1 << k) else b,
                           None if o.endMask & (1 << k) else e, s))
    return tuple(index)


def lower_strided_slice(op, graph, options):
    src = graph.tensors[op.inputs[0]]
    if op.options.ellipsisMask or op.options.newAxisMask:
        raise unsupported(op, "ellipsis or new-axis masks")
    begin = _const_ints(op, graph, 1, "the begin")
    end = _const_ints(op, graph, 2, "the end")
    strides = _const_ints(op, graph, 3, "the strides") or [1] * len(begin)
    index = strided_slice_index(op, src.shape, begin, end, strides)
    return _gather_copy(op, graph, op.inputs[0], _flat(src.shape)[index])


def lower_transpose(op, graph, options):
    src = graph.tensors[op.inputs[0]]
    perm = _const_ints(op, graph, 1, "the permutation")
    return _gather_copy(op, graph, op.inputs[0], np.transpose(_flat(src.shape), perm))


def lower_gather(op, graph, options):
    params = graph.tensors[op.inputs[0]]
    if params.is_const:
        raise unsupported(op, "gathering from a constant table with computed indices")
    indices = _const_ints(op, graph, 1, "the indices")
    o = op.options
    if getattr(o, "batchDims", 0):
        raise unsupported(op, "batch_dims")
    axis = o.axis % len(params.shape)
    if min(indices) < 0 or max(indices) >= params.shape[axis]:
        raise unsupported(op, "indices out of range")
    out = graph.tensors[op.outputs[0]]
    _same_quant(op, params, out)
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    p = step.struct("tfuav_gather_t", {
        "outer": int(np.prod(params.shape[:axis], dtype=np.int64)),
        "axis_in": params.shape[axis], "axis_out": len(indices),
        "inner": int(np.prod(params.shape[axis + 1:], dtype=np.int64)),
        "index": step.const("index", "int32_t", np.array(indices, dtype=np.int32))})
    step.call("tfuav_gather", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    return step


def lower_pad(op, graph, options):
    src = graph.tensors[op.inputs[0]]
    out = graph.tensors[op.outputs[0]]
    _same_quant(op, src, out)
    pads = np.array(_const_ints(op, graph, 1, "the paddings")).reshape(-1, 2)
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = _const_ints(op, graph, 2, "the pad value")[0]
    else:
        value = out.qparams()[1]
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    step.call("tfuav_fill", Ptr(op.outputs[0], 0, True), out.size, value)
    index = tuple(slice(int(b), int(b) + d) for (b, _), d in zip(pads, src.shape))
    add_copies(step, op, op.inputs[0], op.outputs[0], _flat(src.shape),
               _flat(out.shape)[index], "m")
    return step


def _nearest(out_index, in_size, out_size, align_corners, half_pixel):
    if align_corners and out_size > 1:
        scale = f32(f32(in_size - 1) / f32(out_size - 1))
    else:
        scale = f32(f32(in_size) / f32(out_size))
    offset = f32(0.5) if half_pixel else f32(0.0)
    value = f32(f32(f32(out_index) + offset) * scale)
    v = round_half_away(value) if align_corners else math.floor(value)
    v = min(int(v), in_size - 1)
    return max(0, v) if half_pixel else v


def lower_resize_nearest(op, graph, options):
    src = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out = graph.tensors[op.outputs[0]]
    _same_quant(op, src, out)
    n, ih, iw, c = src.shape
    _, oh, ow, _ = out.shape
    ac, hp = bool(op.options.alignCorners), bool(op.options.halfPixelCenters)
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    ys = np.array([_nearest(y, ih, oh, ac, hp) for y in range(oh)], dtype=np.int32)
    xs = np.array([_nearest(x, iw, ow, ac, hp) for x in range(ow)], dtype=np.int32)
    p = step.struct("tfuav_resize_t", {
        "batches": n, "in_h": ih, "in_w": iw, "out_h": oh, "out_w": ow, "depth": c,
        "src_y": step.const("src_y", "int32_t", ys), "src_x": step.const("src_x", "int32_t", xs)})
    step.call("tfuav_resize_nearest", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    return step


# --- pooling and reductions ----------------------------------------------------------------

def lower_pool(op, graph, options):
    src = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    o = op.options
    n, ih, iw, c = src.shape
    _, oh, ow, _ = out.shape
    act = activation_range(op, o.fusedActivationFunction, out)
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    p = step.struct("tfuav_pool_t", {
        "in_h": ih, "in_w": iw, "c": c, "out_h": oh, "out_w": ow, "k_h": o.filterHeight,
        "k_w": o.filterWidth, "stride_h": o.strideH, "stride_w": o.strideW,
        "pad_t": padding(ih, o.filterHeight, o.strideH, 1, oh),
        "pad_l": padding(iw, o.filterWidth, o.strideW, 1, ow),
        "act_min": act[0], "act_max": act[1]})
    func = "tfuav_max_pool_s8" if op.name == "MAX_POOL_2D" else "tfuav_avg_pool_s8"
    for b in range(n):
        step.call(func, p, Ptr(op.inputs[0], b * ih * iw * c),
                  Ptr(op.outputs[0], b * oh * ow * c, True))
    return step


def lower_mean(op, graph, options):
    src = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    rank = len(src.shape)
    axes = sorted({a % rank for a in _const_ints(op, graph, 1, "the axes")})
    reduced = [a for a in axes if src.shape[a] > 1]
    kept = [k for k in range(rank) if k not in axes and src.shape[k] > 1]
    adjacent = not reduced or (reduced == list(range(reduced[0], reduced[-1] + 1))
                               and not any(reduced[0] < k < reduced[-1] for k in kept))
    reduce = int(np.prod([src.shape[k] for k in axes], dtype=np.int64))
    (si, zi), (so, zo) = src.qparams(), out.qparams()
    m, sh = quantize_multiplier(float(si) / float(so))
    # QuantizedMeanOrSum folds 1/N into the multiplier
    shift = min(reduce.bit_length() - 1, 32, 31 + sh)
    m = int((m << shift) // reduce)
    fields = {"outer": 0, "reduce": reduce, "inner": 0, "dims": [0, 0, 0, 0],
              "out_stride": [0, 0, 0, 0], "n_out": out.size, "in_zp_times_n": zi * reduce,
              "mult": m, "shift": sh - shift, "out_zp": zo}
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    if adjacent:
        first = reduced[0] if reduced else rank
        last = reduced[-1] if reduced else rank - 1
        fields["outer"] = int(np.prod([src.shape[k] for k in range(first)], dtype=np.int64))
        fields["inner"] = int(np.prod([src.shape[k] for k in range(last + 1, rank)],
                                      dtype=np.int64))
        step.work_bytes = 4 * fields["inner"]
    else:
        dims = [d for d in src.shape if d > 1]
        if len(dims) > 4:
            raise unsupported(op, f"a reduction of a {len(dims)}-D input over non-adjacent axes")
        out_dims = [1 if k in axes else d for k, d in enumerate(src.shape)]
        strides, acc = [0] * rank, 1
        for k in range(rank - 1, -1, -1):
            strides[k] = 0 if k in axes else acc
            acc *= out_dims[k]
        st = [strides[k] for k in range(rank) if src.shape[k] > 1]
        pad = 4 - len(dims)
        fields["dims"] = [1] * pad + dims
        fields["out_stride"] = [0] * pad + st
        step.work_bytes = 4 * out.size
    p = step.struct("tfuav_mean_t", fields)
    step.call("tfuav_mean_s8", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True),
              Work("int32_t"))
    return step


def lower_softmax(op, graph, options):
    src = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    so, zo = out.qparams()
    if zo != -128 or abs(float(so) - 1.0 / 256) > 0.001 / 256:
        raise unsupported(op, "int8 output must have zero point -128 and scale 1/256")
    beta = float(np.float32(op.options.beta))
    integer_bits = 5
    real = min(beta * float(src.qparams()[0]) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise unsupported(op, "an input scale too small for the reference kernel")
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits))
                        / (1 << left_shift))
    diff_min = -radius
    table = np.zeros(256, dtype=np.int32)
    for d in range(256):
        diff = -d
        if diff >= diff_min:
            rescaled = srdhm(diff * (1 << left_shift), mult)
            table[d] = exp_on_negative_values(rescaled, integer_bits)
    depth = src.shape[-1]
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    p = step.struct("tfuav_softmax_t", {
        "outer": src.size // depth, "depth": depth, "diff_min": diff_min,
        "exp_table": step.const("exp", "int32_t", table)})
    step.call("tfuav_softmax_s8", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    return step


def lower_l2norm(op, graph, options):
    src = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    if float(out.qparams()[0]) != 1.0 / 128 or out.qparams()[1] != 0:
        raise unsupported(op, "int8 output must have scale 1/128 and zero point 0")
    if getattr(op.options, "fusedActivationFunction", 0):
        raise unsupported(op, "a fused activation")
    depth = src.shape[-1]
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    p = step.struct("tfuav_l2norm_t", {"outer": src.size // depth, "depth": depth,
                                       "in_zp": src.qparams()[1]})
    step.call("tfuav_l2norm_s8", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    return step
