"""What lowering produces: per op, the kernel calls with their constant parameter structs
and arrays, the activation tensors read and written, and the scratch they need."""
from dataclasses import dataclass, field

import numpy as np

from tfuav.errors import TfuavError
from tfuav.export.native.fixedpoint import f32, round_half_away


class NativeExportError(TfuavError):
    """The model uses an op, or an op variant, the native engine does not compile."""


def unsupported(op, why):
    return NativeExportError(f"native engine: op {op.index} ({op.name}) is not supported: {why}")


@dataclass
class Const:
    """A constant array in flash: C element type and values (1-D after flattening)."""
    name: str
    ctype: str
    values: np.ndarray


@dataclass
class Struct:
    """A `static const` parameter struct; fields map to ints, floats, C expressions (str)
    or nested dicts."""
    name: str
    ctype: str
    fields: dict


@dataclass
class Ptr:
    """Pointer to an activation tensor (or constant tensor) at byte `offset` within it."""
    tensor: int
    offset: int = 0
    writable: bool = False


@dataclass
class Work:
    """Pointer to the op's temporary scratch."""
    ctype: str = "void"


@dataclass
class Call:
    func: str
    args: list


@dataclass
class Step:
    op: object
    reads: list
    writes: list
    calls: list = field(default_factory=list)
    structs: list = field(default_factory=list)
    consts: list = field(default_factory=list)
    work_bytes: int = 0
    inplace: list = field(default_factory=list)  # input tensors the output may overwrite
    overlap: tuple = None                        # (input, base): output may start `base`
                                                 # bytes before that dying input
    alias_of: int = None                         # output is a view of this input

    def name(self, suffix):
        return f"op{self.op.index}_{suffix}"

    def const(self, suffix, ctype, values):
        c = Const(self.name(suffix), ctype, np.ascontiguousarray(values).reshape(-1))
        self.consts.append(c)
        return c.name

    def struct(self, ctype, fields, suffix="p"):
        s = Struct(self.name(suffix), ctype, fields)
        self.structs.append(s)
        return "&" + s.name

    def call(self, func, *args):
        self.calls.append(Call(func, list(args)))


# --- quantization helpers shared by the op lowerings ----------------------------------------

ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def quantize_float(value, scale, zero_point):
    """TFLite's Quantize() in CalculateActivationRangeQuantized: float32 division, round."""
    return int(zero_point) + round_half_away(f32(f32(value) / f32(scale)))


def activation_range(op, activation, out_tensor):
    """(act_min, act_max) for an int8 output with a fused activation, as TFLite computes it."""
    scale, zp = out_tensor.qparams()
    if activation in (None, 0):
        return -128, 127
    if activation == 1:
        return max(-128, quantize_float(0.0, scale, zp)), 127
    if activation == 3:
        return (max(-128, quantize_float(0.0, scale, zp)),
                min(127, quantize_float(6.0, scale, zp)))
    if activation == 2:
        return (max(-128, quantize_float(-1.0, scale, zp)),
                min(127, quantize_float(1.0, scale, zp)))
    raise unsupported(op, f"fused activation {ACT_NAMES.get(activation, activation)}")


def wrap_int32(values):
    v = np.asarray(values, dtype=np.int64)
    return (((v + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)
