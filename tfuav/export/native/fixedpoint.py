"""TFLite's fixed-point arithmetic in Python integers, for work done at generation time
(multipliers, lookup tables). Follows the double-rounding variant (SaturatingRoundingDoubling-
HighMul then RoundingDivideByPOT) that the installed TFLite reference kernels use, and TFLite's
float32 steps where the kernels compute in float32."""
import ctypes
import ctypes.util
import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def f32(x):
    return np.float32(x)


def round_half_away(x):
    """TfLiteRound / std::round: halves away from zero (exact for float32 and double inputs)."""
    x = float(x)
    whole = math.floor(abs(x))
    r = whole + 1 if abs(x) - whole >= 0.5 else whole  # the difference is exact
    return -int(r) if x < 0 else int(r)


def quantize_multiplier(real):
    """TFLite QuantizeMultiplier: (q31 multiplier, exponent) with real ~= m * 2^(e - 31)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def wrap32(x):
    return ((int(x) + (1 << 31)) % (1 << 32)) - (1 << 31)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rdbp(x, exponent):
    """gemmlowp RoundingDivideByPOT (exponent >= 0)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier(int32 x, multiplier, shift), double rounding."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdbp(srdhm(wrap32(x * (1 << left)), multiplier), right)


def srdhm16(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for int16."""
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    v = ab + nudge
    q = abs(v) >> 15
    return q if v >= 0 else -q


def to_int16(x):
    return ((int(x) + 32768) % 65536) - 32768


# --- float32 math the reference kernels call (for lookup tables) -------------------------

def _libm():
    name = ctypes.util.find_library("m")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn in ("expf", "tanhf"):
            getattr(lib, fn).restype = ctypes.c_float
            getattr(lib, fn).argtypes = [ctypes.c_float]
        return lib
    except (OSError, AttributeError):
        return None


_LIBM = _libm()


def expf(x):
    """std::exp(float): the C library's expf where it can be called (what the TFLite
    kernels call), else exp in double rounded to float32."""
    if _LIBM is not None:
        return f32(_LIBM.expf(float(x)))
    return f32(math.exp(float(x)))


def tanhf(x):
    if _LIBM is not None:
        return f32(_LIBM.tanhf(float(x)))
    return f32(math.tanh(float(x)))


def float_lut(in_scale, in_zp, out_scale, out_zp, transform):
    """TFLite LUTPopulate<int8_t>: the 256-entry table (indexed by the uint8 bit pattern of the
    input) of quantize(transform(dequantize(x))) in float32."""
    in_scale, out_scale = f32(in_scale), f32(out_scale)
    inverse = f32(f32(1.0) / out_scale)
    table = np.zeros(256, dtype=np.int8)
    for val in range(-128, 128):
        dequantized = f32(in_scale * f32(val - in_zp))
        transformed = f32(transform(dequantized))
        rescaled = round_half_away(f32(transformed * inverse))
        quantized = int(f32(f32(rescaled) + f32(out_zp)))
        table[val & 0xFF] = max(-128, min(127, quantized))
    return table


# --- gemmlowp fixed-point functions on raw int32 values (Qm.(31-m)) ----------------------

def sat_shift_left(x, exponent):
    """SaturatingRoundingMultiplyByPOT with a positive exponent."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def rescale(x, src_bits, dst_bits):
    e = src_bits - dst_bits
    if e > 0:
        return sat_shift_left(x, e)
    if e < 0:
        return rdbp(x, -e)
    return x


def _exp_on_interval(a):
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    constant_term, one_third = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbp(x4, 2)
    poly = rdbp(wrap32(srdhm(wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits):
    """gemmlowp exp_on_negative_values for a raw Q(integer_bits) value a <= 0; Q0.31 out."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = _exp_on_interval(rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                 (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            if remainder & (1 << shift):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result
