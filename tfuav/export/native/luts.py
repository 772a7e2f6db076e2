"""256-entry int8 -> int8 tables for the one-input element-wise ops, computed at generation
time the way the TFLite reference kernels compute each element, so a table lookup gives the
same bytes. Tables are indexed by the uint8 bit pattern of the input."""
import numpy as np

from tfuav.export.native.fixedpoint import (expf, f32, float_lut, mbqm, quantize_multiplier,
                                            rdbp, round_half_away, srdhm16, tanhf, to_int16)

VALUES = range(-128, 128)


def _table(fn):
    table = np.zeros(256, dtype=np.int8)
    for v in VALUES:
        table[v & 0xFF] = max(-128, min(127, fn(v)))
    return table


def logistic_table(in_s, in_zp, out_s, out_zp):
    # activations.cc: LUTPopulate with 1.0f / (1.0f + std::exp(-value)) in float32
    return float_lut(in_s, in_zp, out_s, out_zp,
                     lambda v: f32(f32(1.0) / f32(f32(1.0) + expf(-v))))


def tanh_table(in_s, in_zp, out_s, out_zp):
    return float_lut(in_s, in_zp, out_s, out_zp, tanhf)


def requantize_table(in_s, in_zp, out_s, out_zp):
    """QUANTIZE int8 -> int8 (reference Requantize): scale ratio in double."""
    m, s = quantize_multiplier(float(in_s) / float(out_s))
    return _table(lambda v: mbqm(v - in_zp, m, s) + out_zp)


def relu_table(in_s, in_zp, out_s, out_zp, lo, hi):
    """RELU / RELU6 / RELU_N1_TO_1 (QuantizedReluX): float32 scale ratio, roundf bounds."""
    m, s = quantize_multiplier(float(f32(f32(in_s) / f32(out_s))))
    act_min = max(-128, out_zp + round_half_away(f32(f32(lo) / f32(out_s))))
    act_max = 127 if hi is None else min(127, out_zp + round_half_away(f32(f32(hi) / f32(out_s))))
    return _table(lambda v: min(act_max, max(act_min, out_zp + mbqm(v - in_zp, m, s))))


def leaky_relu_table(in_s, in_zp, out_s, out_zp, alpha):
    m_alpha, s_alpha = quantize_multiplier(float(f32(f32(f32(in_s) * f32(alpha)) / f32(out_s))))
    m_id, s_id = quantize_multiplier(float(f32(f32(in_s) / f32(out_s))))
    negative = m_alpha < 0
    m_alpha = abs(m_alpha)

    def one(v):
        x = v - in_zp
        if x >= 0:
            return out_zp + mbqm(x, m_id, s_id)
        scaled = mbqm(x, m_alpha, s_alpha)
        return out_zp + (-scaled if negative else scaled)
    return _table(one)


def _downscale_int16(m32):
    """TFLite DownScaleInt32ToInt16Multiplier."""
    assert m32 >= 0
    rounding = 1 << 15
    if m32 >= (1 << 31) - 1 - rounding:
        return 32767
    return (m32 + rounding) >> 16


def hard_swish_table(in_s, in_zp, out_s, out_zp):
    """reference_ops::HardSwish for int8 with HardSwishPrepare's parameters (float32 scales,
    int16 fixed-point multipliers)."""
    hires = f32(f32(1.0 / 128.0) * f32(in_s))
    reluish_scale = f32(3.0 / 32768.0)
    out_m32, out_e = quantize_multiplier(float(f32(hires / f32(out_s))))
    relu_m32, relu_e = quantize_multiplier(float(f32(hires / reluish_scale)))
    out_m16, relu_m16 = _downscale_int16(out_m32), _downscale_int16(relu_m32)

    def sat_left_shift(v, amount):
        return max(-32768, min(32767, v * (1 << amount)))

    def sdhm16(a, b):  # SaturatingDoublingHighMul (no rounding), truncating division
        if a == b == -32768:
            return 32767
        ab = a * b
        q = abs(ab) >> 15
        return to_int16(q if ab >= 0 else -q)

    def one(v):
        x = to_int16(v - in_zp)
        hi = to_int16(x * 128)
        pre_out = srdhm16(hi, out_m16)
        reluish = hi
        if relu_e > 0:
            reluish = sat_left_shift(reluish, relu_e - 1)
        reluish = srdhm16(reluish, relu_m16)
        if relu_e > 0:
            reluish = sat_left_shift(reluish, 1)
        if relu_e < 0:
            reluish = rdbp(reluish, -relu_e)
        reluish = to_int16((reluish + (1 << 15)) >> 1)
        pre_shift = sdhm16(reluish, pre_out)
        out = to_int16(rdbp(pre_shift, -out_e) + out_zp)
        return out
    return _table(one)


def inv_sqrt_multiplier(value):
    """TFLite GetInvSqrtQuantizedMultiplierExp(value, reverse_shift=-1): (multiplier, shift)."""
    from tfuav.export.native.fixedpoint import INT32_MAX, rescale, srdhm, wrap32
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    pairs = (32 - value.bit_length() - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = rdbp(value >> 1, 1)
    x = 1 << 28
    for _ in range(5):
        x3 = rescale(srdhm(srdhm(x, x), x), 9, 3)
        x = rescale(wrap32(srdhm((1 << 28) + (1 << 27), x) - srdhm(half_input, x3)), 6, 3)
    x = srdhm(x, 1518500250)
    if shift < 0:
        x = wrap32(x << -shift)
        shift = 0
    return x, -shift


def rsqrt_table(in_s, in_zp, out_s, out_zp):
    """RSQRT for int8 (elementwise.cc): 1 / sqrt through the fixed-point inverse square root;
    inputs below the zero point (negative reals, an error in the reference) map to 127."""
    import math
    m, s = quantize_multiplier(1.0 / float(f32(f32(math.sqrt(float(in_s))) * f32(out_s))))

    def one(v):
        value = v - in_zp
        if value <= 0:
            return 127
        inv_m, inv_s = inv_sqrt_multiplier(value)
        data = mbqm(1, inv_m, inv_s + 20)
        return mbqm(data, m, s - 20) + out_zp
    return _table(one)
