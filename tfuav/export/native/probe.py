"""What the installed TFLite reference kernels compute where TFLite builds differ, found by
running them on two small models whose outputs tell the variants apart:

  rounding    MultiplyByQuantizedMultiplier: "double" (SaturatingRoundingDoublingHighMul then
              RoundingDivideByPOT, the default) or "single" (TFLITE_SINGLE_ROUNDING builds)
  fc_requant  FULLY_CONNECTED's reference kernel: "float" (round(acc * scale) in double, since
              2025) or "fixed" (MultiplyByQuantizedMultiplier, before)
"""
import functools
import importlib.util

import numpy as np

from tfuav.export.native.fixedpoint import f32, mbqm, quantize_multiplier, round_half_away
from tfuav.export.native.tflite_builder import ModelBuilder, options

DEFAULT = {"rounding": "double", "fc_requant": "float"}


def _single_rounding(x, m, shift):
    total = 31 - shift
    return (x * m + (1 << (total - 1))) >> total


def _run(model, x):
    from ai_edge_litert import interpreter as litert
    interp = litert.Interpreter(model_content=model,
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).astype(np.int64)


def _pick(reference, candidates):
    """The name of the candidate whose outputs equal the reference (None if none does or if
    the probe data cannot tell the candidates apart)."""
    matching = [name for name, values in candidates.items() if np.array_equal(values, reference)]
    distinct = len({v.tobytes() for v in candidates.values()}) == len(candidates)
    return matching[0] if len(matching) == 1 and distinct else None


def _probe_rounding(rng):
    c, k = 64, 16
    in_s, in_zp, out_s, out_zp = 0.037, 3, 0.11, -5
    w_s = rng.uniform(0.002, 0.01, k)
    w = rng.integers(-127, 128, (k, 1, 1, c))
    bias = rng.integers(-2000, 2000, k)
    b = ModelBuilder()
    x = b.tensor((1, 16, 16, c), scale=in_s, zero_point=in_zp)
    wt = b.tensor(w.shape, scale=w_s, zero_point=0, data=w)
    bt = b.tensor((k,), "int32", scale=in_s * w_s, data=bias)
    y = b.tensor((1, 16, 16, k), scale=out_s, zero_point=out_zp)
    b.op("CONV_2D", [x, wt, bt], [y], options("Conv2D", padding=1, strideW=1, strideH=1),
         version=3)
    xs = rng.integers(-128, 128, (1, 16, 16, c)).astype(np.int8)
    acc = np.einsum("nhwc,kc->nhwk", xs.astype(np.int64) - in_zp,
                    w[:, 0, 0, :].astype(np.int64)) + bias
    mults = [quantize_multiplier(float(f32(in_s)) * float(f32(s)) / float(f32(out_s)))
             for s in w_s]
    candidates = {}
    for name, fn in (("double", mbqm), ("single", _single_rounding)):
        out = np.array([fn(int(a), *mults[i % k]) for i, a in enumerate(acc.reshape(-1))])
        candidates[name] = np.clip(out + out_zp, -128, 127)
    return _pick(_run(b.build([x], [y]), xs).reshape(-1), candidates)


def _probe_fc(rng):
    rows, depth, units = 256, 64, 16
    in_s, in_zp, w_s, out_s, out_zp = 0.043, 3, 0.0071, 0.13, -5
    w = rng.integers(-127, 128, (units, depth))
    bias = rng.integers(-2000, 2000, units)
    b = ModelBuilder()
    x = b.tensor((rows, depth), scale=in_s, zero_point=in_zp)
    wt = b.tensor(w.shape, scale=w_s, zero_point=0, data=w)
    bt = b.tensor((units,), "int32", scale=in_s * w_s, data=bias)
    y = b.tensor((rows, units), scale=out_s, zero_point=out_zp)
    b.op("FULLY_CONNECTED", [x, wt, bt], [y], options("FullyConnected"), version=4)
    xs = rng.integers(-128, 128, (rows, depth)).astype(np.int8)
    acc = ((xs.astype(np.int64) - in_zp) @ w.T.astype(np.int64) + bias).reshape(-1)
    scale = float(f32(in_s)) * float(f32(w_s)) / float(f32(out_s))
    m, s = quantize_multiplier(float(f32(f32(in_s) * f32(w_s))) / float(f32(out_s)))
    candidates = {
        "float": np.array([round_half_away(float(a) * scale) for a in acc]),
        "fixed": np.array([mbqm(int(a), m, s) for a in acc]),
    }
    for name in candidates:
        candidates[name] = np.clip(candidates[name] + out_zp, -128, 127)
    return _pick(_run(b.build([x], [y]), xs).reshape(-1), candidates)


@functools.lru_cache(maxsize=1)
def reference_arithmetic():
    """{"rounding": ..., "fc_requant": ...} of the installed TFLite reference kernels (the
    current TFLite's behaviour when ai_edge_litert is not installed or a probe is
    inconclusive)."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return dict(DEFAULT)
    rng = np.random.default_rng(7)
    found = dict(DEFAULT)
    rounding, fc = _probe_rounding(rng), _probe_fc(rng)
    if rounding:
        found["rounding"] = rounding
    if fc:
        found["fc_requant"] = fc
    return found
