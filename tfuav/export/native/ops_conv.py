"""Lowering of the multiply-accumulate ops: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV, BATCH_MATMUL."""
import numpy as np

from tfuav.export.native.fixedpoint import quantize_multiplier
from tfuav.export.native.program import Ptr, Step, Work, activation_range, unsupported, wrap_int32


REQUANT_BYTES = 24  # sizeof(tfuav_requant_t): int64 + 3 int32, 8-byte aligned


def int8_activation(op, tensor, what):
    if tensor.dtype != "int8" or tensor.scale is None or not tensor.per_tensor:
        raise unsupported(op, f"{what} must be int8 with per-tensor quantization "
                              f"(got {tensor.dtype}{'' if tensor.scale is not None else ', no quantization'})")
    return tensor


def const_input(op, graph, position, dtype, what):
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    t = graph.tensors[op.inputs[position]]
    if not t.is_const:
        raise unsupported(op, f"{what} must be a constant tensor")
    if t.dtype != dtype:
        raise unsupported(op, f"{what} must be {dtype}, not {t.dtype}")
    return t


def channel_scales(filt, count):
    return np.broadcast_to(filt.scale.astype(np.float32), (count,)) if len(filt.scale) == 1 \
        else filt.scale.astype(np.float32)


def per_channel_multipliers(in_t, filt, out_t, count):
    """TFLite PopulateConvolutionQuantizationParams: in * filter / out in double, per channel."""
    in_s, out_s = float(in_t.qparams()[0]), float(out_t.qparams()[0])
    pairs = [quantize_multiplier(in_s * float(s) / out_s) for s in channel_scales(filt, count)]
    return (np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32))


def padding(in_size, k, stride, dil, out_size):
    """TFLite ComputePaddingWithOffset for the output size the model declares."""
    eff = (k - 1) * dil + 1
    return max((out_size - 1) * stride + eff - in_size, 0) // 2


def conv_padding(op, ih, iw, k, stride, dil, out):
    """(top, left) padding; a PAD folded into the op (rewrite.fuse_pads) adds its own and the
    op's padding is then computed on the padded size, as the reference kernel saw it."""
    pre = op.extra.get("pre_pad")
    h, w = (pre["height"], pre["width"]) if pre else (ih, iw)
    top = padding(h, k[0], stride[0], dil[0], out[0]) + (pre["top"] if pre else 0)
    left = padding(w, k[1], stride[1], dil[1], out[1]) + (pre["left"] if pre else 0)
    return top, left


def rq_fields(step, bias, mult, shift, act, out_zp, scale=None):
    """tfuav_rq_t: per channel {bias, multiplier, shift} triples (zeros for the multiplier
    and shift where the kernel requantizes with the real scale instead)."""
    n = len(bias)
    mult = np.zeros(n, np.int64) if mult is None else np.asarray(mult, np.int64)
    shift = np.zeros(n, np.int64) if shift is None else np.asarray(shift, np.int64)
    q = np.stack([np.asarray(bias, np.int64), mult, shift], axis=1)
    return {"q": step.const("q", "int32_t", q.astype(np.int32)),
            "scale": "NULL" if scale is None else step.const("scale", "double", scale),
            "out_zp": out_zp, "act_min": act[0], "act_max": act[1]}


def pack_pairs(w):
    """[channels][depth] int8 weights in the matmul kernels' layout: channel pairs, each as
    depth/4 blocks of 8 bytes (4 depths of the first channel, then of the second), then the
    remaining depths as byte pairs; an odd last channel as plain bytes."""
    w = np.asarray(w, dtype=np.int8)
    k, depth = w.shape
    d4 = depth // 4 * 4
    parts = []
    for c in range(0, k - 1, 2):
        a, b = w[c], w[c + 1]
        blocks = np.stack([a[:d4].reshape(-1, 4), b[:d4].reshape(-1, 4)], axis=1).reshape(-1)
        tail = np.stack([a[d4:], b[d4:]], axis=1).reshape(-1)
        parts += [blocks, tail]
    if k % 2:
        parts.append(w[-1])
    return np.concatenate(parts) if parts else np.zeros(0, np.int8)


def depthwise_taps(taps):
    """[taps][channels] int8 depthwise weights as the int16 layout of the kernel: channels in
    blocks of four, each block [taps][4] ordered (c, c+2, c+1, c+3) -- the order SXTB16
    unpacks four input bytes in -- then each of the last channels % 4 as [taps]."""
    taps = np.asarray(taps, np.int16)
    n, c = taps.shape
    c4 = c // 4 * 4
    blocks = taps[:, :c4].reshape(n, -1, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2)
    return np.concatenate([blocks.reshape(-1), taps[:, c4:].T.reshape(-1)])


def pack_groups(w, groups):
    """pack_pairs for each group of output channels of a [out][...] filter."""
    flat = np.asarray(w, np.int8).reshape(w.shape[0], -1)
    per = flat.shape[0] // groups
    return np.concatenate([pack_pairs(flat[g * per:(g + 1) * per]) for g in range(groups)])


IM2COL_COLUMNS = 8     # im2col columns per matrix product (fewer where a column is large)
OVERLAP_ROWS = 16      # row tile of a pointwise conv that writes over its input
IM2COL_BYTES = 2048


def overlap_base(pixels, c_in, c_out, tile):
    """Smallest offset of the input after the output's start such that a stride-1 pointwise
    conv processing rows in tiles of `tile` (every row of a tile read until the tile is done)
    never writes over input it still has to read: for the tile starting at row r0 the output
    written so far ends at c_out * min(r0 + tile, pixels), the unread input starts at
    base + c_in * r0."""
    return max(0, max(c_out * min(r0 + tile, pixels) - c_in * r0
                      for r0 in range(0, pixels, tile)))


def depthwise_overlap_base(in_hw, out_hw, k, stride, dil, pad, c_in, c_out):
    """Smallest offset of the input after the output's start such that the depthwise kernel,
    writing all channels of one output pixel after another in raster order, never writes
    over input that this pixel or a later one still reads: the output written up to pixel p
    ends at c_out * (p + 1), the earliest input a pixel >= p reads starts at
    base + c_in * (its first tap's pixel index)."""
    (ih, iw), (oh, ow) = in_hw, out_hw
    first = []
    for oy in range(oh):
        iy0 = oy * stride[0] - pad[0]
        rows = [iy0 + t * dil[0] for t in range(k[0]) if 0 <= iy0 + t * dil[0] < ih]
        for ox in range(ow):
            ix0 = ox * stride[1] - pad[1]
            cols = [ix0 + t * dil[1] for t in range(k[1]) if 0 <= ix0 + t * dil[1] < iw]
            first.append(rows[0] * iw + cols[0] if rows and cols else None)
    base, earliest = 0, None
    for p in range(len(first) - 1, -1, -1):
        if first[p] is not None:
            earliest = first[p] if earliest is None else min(earliest, first[p])
        if earliest is not None:
            base = max(base, c_out * (p + 1) - c_in * earliest)
    return base


def row_tile(row_bytes, cache_bytes):
    """Input rows per tile of a pointwise conv so that a tile of rows fits cache_bytes."""
    if not cache_bytes:
        return 0
    return max(2, (cache_bytes // max(row_bytes, 1)) // 2 * 2)


def _bias_values(op, graph, count):
    bias = const_input(op, graph, 2, "int32", "the bias")
    if bias is None:
        return np.zeros(count, dtype=np.int64)
    return bias.data.reshape(-1).astype(np.int64)


def lower_conv(op, graph, options):
    in_t = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out_t = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    filt = const_input(op, graph, 1, "int8", "the filter")
    o = op.options
    n, ih, iw, ic = in_t.shape
    _, oh, ow, oc = out_t.shape
    kc, kh, kw, kin = filt.shape
    if kc != oc or ic % kin or oc % (ic // kin):
        raise unsupported(op, f"filter {filt.shape} does not match input {in_t.shape} and "
                              f"output {out_t.shape}")
    groups = ic // kin
    in_zp = in_t.qparams()[1]
    act = activation_range(op, o.fusedActivationFunction, out_t)
    mult, shift = per_channel_multipliers(in_t, filt, out_t, oc)
    w = filt.data.astype(np.int64)
    bias = wrap_int32(_bias_values(op, graph, oc) - in_zp * w.reshape(oc, -1).sum(axis=1))
    sh, sw, dh, dw = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
    pad_t, pad_l = conv_padding(op, ih, iw, (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    pointwise = kh == kw == 1 and pad_t == pad_l == 0
    depth = kh * kw * kin
    columns = max(2, min(IM2COL_COLUMNS, IM2COL_BYTES // depth) // 2 * 2)
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    tile = columns
    if pointwise:
        tile = row_tile(kin, options.cache_bytes)
        if n == 1 and groups == 1 and sh == sw == 1:
            tile = min(tile or OVERLAP_ROWS, OVERLAP_ROWS)
            step.overlap = (op.inputs[0], overlap_base(oh * ow, ic, oc, tile))
    p = step.struct("tfuav_conv_t", {
        "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw,
        "pad_t": pad_t, "pad_l": pad_l, "groups": groups, "in_zp": in_zp,
        "tile": tile,
        "depth_mult": 1, "w": step.const("w", "int8_t", pack_groups(filt.data, groups)),
        "w16": "NULL", "bias_raw": "NULL",
        "rq": rq_fields(step, bias, mult, shift, act, out_t.qparams()[1])})
    if not pointwise:
        step.work_bytes = columns * depth
    for b in range(n):
        src, dst = Ptr(op.inputs[0], b * ih * iw * ic), Ptr(op.outputs[0], b * oh * ow * oc, True)
        if pointwise:
            step.call("tfuav_conv_1x1_s8", p, src, dst)
        else:
            step.call("tfuav_conv_s8", p, src, dst, Work())
    return step


def lower_depthwise(op, graph, options):
    in_t = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out_t = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    filt = const_input(op, graph, 1, "int8", "the filter")
    o = op.options
    n, ih, iw, ic = in_t.shape
    _, oh, ow, oc = out_t.shape
    _, kh, kw, kc = filt.shape
    if kc != oc or oc % ic:
        raise unsupported(op, f"filter {filt.shape} does not match input {in_t.shape}")
    in_zp = in_t.qparams()[1]
    act = activation_range(op, o.fusedActivationFunction, out_t)
    mult, shift = per_channel_multipliers(in_t, filt, out_t, oc)
    raw = _bias_values(op, graph, oc)
    folded = wrap_int32(raw - in_zp * filt.data.astype(np.int64).reshape(-1, oc).sum(axis=0))
    sh, sw, dh, dw = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    taps = filt.data.reshape(kh * kw, oc)
    fields = {"w": "NULL", "w16": "NULL"}
    if oc == ic:
        fields["w16"] = step.const("w16", "int16_t", depthwise_taps(taps))
    else:
        fields["w"] = step.const("w", "int8_t", taps)
    p = step.struct("tfuav_conv_t", {
        "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw,
        **dict(zip(("pad_t", "pad_l"), conv_padding(op, ih, iw, (kh, kw), (sh, sw), (dh, dw),
                                                     (oh, ow)))),
        "groups": 1, "in_zp": in_zp, "tile": 0, "depth_mult": oc // ic,
        **fields,
        "bias_raw": step.const("bias_raw", "int32_t", wrap_int32(raw)),
        "rq": rq_fields(step, folded, mult, shift, act, out_t.qparams()[1])})
    step.work_bytes = REQUANT_BYTES * oc + 12 * kh * kw
    if n == 1:
        step.overlap = (op.inputs[0], depthwise_overlap_base(
            (ih, iw), (oh, ow), (kh, kw), (sh, sw), (dh, dw),
            conv_padding(op, ih, iw, (kh, kw), (sh, sw), (dh, dw), (oh, ow)), ic, oc))
    for b in range(n):
        step.call("tfuav_depthwise_s8", p, Ptr(op.inputs[0], b * ih * iw * ic),
                  Ptr(op.outputs[0], b * oh * ow * oc, True), Work())
    return step


def lower_fully_connected(op, graph, options):
    in_t = int8_activation(op, graph.tensors[op.inputs[0]], "the input")
    out_t = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    filt = const_input(op, graph, 1, "int8", "the weights")
    o = op.options
    if getattr(o, "weightsFormat", 0) != 0:
        raise unsupported(op, "shuffled weights format")
    units, depth = filt.shape[0], int(np.prod(filt.shape[1:]))
    if in_t.size % depth:
        raise unsupported(op, f"input {in_t.shape} is not a multiple of the depth {depth}")
    rows = in_t.size // depth
    w = filt.data.reshape(units, depth).astype(np.int64)
    if len(filt.scale) == 1 and int(filt.zero_point[0]) != 0:
        w = w - int(filt.zero_point[0])  # per-tensor weights with an offset: fold it in
        if w.min() < -128 or w.max() > 127:
            raise unsupported(op, "weights with a zero point that leaves the int8 range")
    in_s, in_zp = in_t.qparams()
    out_s, out_zp = out_t.qparams()
    scales = channel_scales(filt, units)
    bias = wrap_int32(_bias_values(op, graph, units) - in_zp * w.sum(axis=1))
    act = activation_range(op, o.fusedActivationFunction, out_t)
    step = Step(op, reads=[op.inputs[0]], writes=[op.outputs[0]])
    if options.fc_requant == "float":
        # the reference kernel requantizes in double: round(acc * in * filter / out)
        scale = np.array([float(in_s) * float(s) / float(out_s) for s in scales], np.float64)
        rq = rq_fields(step, bias, None, None, act, out_zp, scale=scale)
    else:
        # fixed point; per-tensor weights take the product of the scales in float32
        reals = [float(in_s) * float(s) / float(out_s) for s in scales] if len(filt.scale) > 1 \
            else [float(np.float32(in_s * scales[0])) / float(out_s)] * units
        pairs = [quantize_multiplier(r) for r in reals]
        rq = rq_fields(step, bias, [m for m, _ in pairs], [s for _, s in pairs], act, out_zp)
    p = step.struct("tfuav_fc_t", {
        "rows": rows, "depth": depth, "units": units,
        "row_tile": row_tile(depth, options.cache_bytes),
        "w": step.const("w", "int8_t", pack_pairs(w.astype(np.int8))), "rq": rq})
    step.call("tfuav_fully_connected_s8", p, Ptr(op.inputs[0]), Ptr(op.outputs[0], 0, True))
    return step


def lower_transpose_conv(op, graph, options):
    in_t = int8_activation(op, graph.tensors[op.inputs[2]], "the input")
    out_t = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    filt = const_input(op, graph, 1, "int8", "the filter")
    bias = const_input(op, graph, 3, "int32", "the bias")
    o = op.options
    n, ih, iw, ic = in_t.shape
    _, oh, ow, oc = out_t.shape
    kc, kh, kw, kin = filt.shape
    if kc != oc or kin != ic:
        raise unsupported(op, f"filter {filt.shape} does not match the input {in_t.shape}")
    act = activation_range(op, getattr(o, "fusedActivationFunction", 0), out_t)
    mult, shift = per_channel_multipliers(in_t, filt, out_t, oc)
    bias_values = bias.data.reshape(-1) if bias is not None else np.zeros(oc, np.int32)
    step = Step(op, reads=[op.inputs[2]], writes=[op.outputs[0]])
    p = step.struct("tfuav_tconv_t", {
        "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "k_h": kh, "k_w": kw, "stride_h": o.strideH, "stride_w": o.strideW,
        "pad_t": max((ih - 1) * o.strideH + kh - oh, 0) // 2,
        "pad_l": max((iw - 1) * o.strideW + kw - ow, 0) // 2,
        "in_offset": -in_t.qparams()[1], "w": step.const("w", "int8_t", filt.data),
        "rq": rq_fields(step, bias_values, mult, shift, act, out_t.qparams()[1])})
    step.work_bytes = 4 * oh * ow * oc
    for b in range(n):
        step.call("tfuav_transpose_conv_s8", p, Ptr(op.inputs[2], b * ih * iw * ic),
                  Ptr(op.outputs[0], b * oh * ow * oc, True), Work("int32_t"))
    return step


def lower_batch_matmul(op, graph, options):
    lhs_t = int8_activation(op, graph.tensors[op.inputs[0]], "the left input")
    rhs_t = int8_activation(op, graph.tensors[op.inputs[1]], "the right input")
    out_t = int8_activation(op, graph.tensors[op.outputs[0]], "the output")
    o = op.options
    lshape, rshape = list(lhs_t.shape), list(rhs_t.shape)
    if len(lshape) < 2 or len(rshape) < 2:
        raise unsupported(op, "inputs of rank below 2")
    lb, rb = lshape[:-2], rshape[:-2]
    nb = max(len(lb), len(rb))
    lb, rb = [1] * (nb - len(lb)) + lb, [1] * (nb - len(rb)) + rb
    batches = int(np.prod([max(a, b) for a, b in zip(lb, rb)])) if nb else 1
    if lb != rb and int(np.prod(lb or [1])) != 1 and int(np.prod(rb or [1])) != 1:
        raise unsupported(op, f"batch broadcasting of {lhs_t.shape} with {rhs_t.shape}")
    lr, lc = lshape[-2:]
    rr, rc = rshape[-2:]
    rows, depth = (lc, lr) if o.adjX else (lr, lc)
    depth_r, cols = (rc, rr) if o.adjY else (rr, rc)
    if depth != depth_r:
        raise unsupported(op, f"inner dimensions {depth} and {depth_r} differ")
    lhs_s, lhs_zp = lhs_t.qparams()
    rhs_s, rhs_zp = rhs_t.qparams()
    out_s, out_zp = out_t.qparams()
    # GetQuantizedConvolutionMultipler: the product of the input scales is taken in float32
    mult, shift = quantize_multiplier(float(np.float32(lhs_s * rhs_s)) / float(out_s))
    step = Step(op, reads=[op.inputs[0], op.inputs[1]], writes=[op.outputs[0]])
    p = step.struct("tfuav_bmm_t", {
        "batches": batches,
        "lhs_batch_stride": 0 if int(np.prod(lb or [1])) == 1 else lr * lc,
        "rhs_batch_stride": 0 if int(np.prod(rb or [1])) == 1 else rr * rc,
        "rows": rows, "depth": depth, "cols": cols,
        "lhs_row_stride": 1 if o.adjX else lc, "lhs_depth_stride": lc if o.adjX else 1,
        "rhs_depth_stride": 1 if o.adjY else rc, "rhs_col_stride": rc if o.adjY else 1,
        "lhs_offset": -lhs_zp, "rhs_offset": -rhs_zp, "mult": mult, "shift": shift,
        "out_zp": out_zp, "act_min": -128, "act_max": 127})
    step.call("tfuav_batch_matmul_s8", p, Ptr(op.inputs[0]), Ptr(op.inputs[1]),
              Ptr(op.outputs[0], 0, True))
    return step
