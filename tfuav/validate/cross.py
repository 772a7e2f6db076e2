"""Cross-validate an int8 .tflite: TFLite reference kernels vs TFLite Micro, bit for bit.

The gate is exact agreement. The only exceptions are listed in ALLOWANCES, each with the
reason the two runtimes legitimately differ and a bound in output LSB; an allowance applies
only if the model actually contains the op it names.
"""
from dataclasses import asdict, dataclass, field

import numpy as np

from tfuav.convert.inspect_tflite import op_details, tflite_info
from tfuav.quantization import quantize
from tfuav.validate.runtimes import TflmRunError, find_arena_size, run_reference, run_tflm

RUNTIMES = ["tflite-reference", "tflm"]

# Ops whose int8 results legitimately differ between the two runtimes, with the traced cause
# and a bound in output LSB. An allowance applies only if the model contains the op.
ALLOWANCES = [
    {
        "op": "FULLY_CONNECTED",
        "bound_lsb": 1,
        "reason": ("requantization rounding: the TFLite reference FULLY_CONNECTED kernel scales "
                   "the int32 accumulator by its fixed-point multiplier with a single rounding, "
                   "TFLM with gemmlowp's two roundings (rounding doubling high multiply, then "
                   "rounding right shift); the two differ by 1 LSB where the exact product lies "
                   "next to a rounding tie, with or without a fused activation"),
    },
]


@dataclass
class ValidationResult:
    runtimes: list = field(default_factory=lambda: list(RUNTIMES))
    max_abs_diff: int = 0
    num_differing: int = 0
    num_outputs: int = 0
    passed: bool = False
    allowances: list = field(default_factory=list)
    first_divergence: dict | None = None
    arena_bytes: int | None = None
    error: str | None = None

    def to_dict(self):
        return asdict(self)

    def summary(self):
        if self.error:
            return f"FAILED: {self.error}"
        verdict = "passed" if self.passed else "FAILED"
        text = (f"{verdict}: {self.num_differing}/{self.num_outputs} outputs differ, max "
                f"{self.max_abs_diff} LSB ({' vs '.join(self.runtimes)}, arena "
                f"{self.arena_bytes} bytes)")
        if self.first_divergence and not self.passed:
            d = self.first_divergence
            text += (f"; first divergence: input {d['input_index']} output {d['output_index']}"
                     f" reference {d['reference']} tflm {d['tflm']}")
        return text


def applicable_allowances(model_bytes):
    """The allowances whose op is present in the model."""
    details = op_details(model_bytes)
    found = []
    for rule in ALLOWANCES:
        if any(d["name"] == rule["op"] for d in details):
            found.append({"op": rule["op"], "reason": rule["reason"],
                          "bound_lsb": rule["bound_lsb"]})
    return found


def _output_lsb(model_bytes):
    """Size of one LSB of the output, for float outputs (1 for integer outputs)."""
    out = tflite_info(model_bytes)["outputs"][0]
    if out["dtype"].startswith("int") or out["dtype"].startswith("uint"):
        return None
    # float output (float_io): the quantized tensor feeding the final DEQUANTIZE has the scale
    from tfuav.convert.inspect_tflite import load_model
    model = load_model(model_bytes)
    sg = model.subgraphs[0]
    target = int(sg.outputs[0])
    for op in sg.operators:
        if target in [int(t) for t in op.outputs]:
            q = sg.tensors[int(op.inputs[0])].quantization
            if q is not None and q.scale is not None and len(q.scale):
                return float(q.scale[0])
    return None


def _as_int(v):
    return v.item() if hasattr(v, "item") else v


def cross_validate(model_bytes, inputs, arena_size=None):
    """Run every input on both runtimes and compare outputs exactly (see ALLOWANCES)."""
    result = ValidationResult()
    try:
        result.arena_bytes = int(arena_size) if arena_size else find_arena_size(model_bytes)
        tflm = run_tflm(model_bytes, inputs, arena_size=result.arena_bytes)
    except TflmRunError as exc:
        result.error = str(exc)
        return result
    return compare_outputs(model_bytes, run_reference(model_bytes, inputs), tflm, result)


def compare_outputs(model_bytes, ref, tflm, result=None):
    """Compare per-input outputs of the reference kernels and TFLM exactly (see ALLOWANCES)."""
    result = result or ValidationResult()
    lsb = _output_lsb(model_bytes)

    max_diff, differing, total = 0, 0, 0
    for k, (r, m) in enumerate(zip(ref, tflm)):
        r, m = np.asarray(r).ravel(), np.asarray(m).ravel()
        total += r.size
        if lsb is None:
            diff = np.abs(r.astype(np.int64) - m.astype(np.int64))
        else:
            diff = np.ceil(np.abs(r.astype(np.float64) - m.astype(np.float64)) / lsb - 1e-6)
            diff = diff.astype(np.int64)
        nz = np.flatnonzero(r != m)
        differing += int(nz.size)
        if nz.size:
            max_diff = max(max_diff, int(diff.max()))
            if result.first_divergence is None:
                j = int(nz[0])
                result.first_divergence = {"input_index": k, "output_index": j,
                                           "reference": _as_int(r[j]), "tflm": _as_int(m[j])}
    result.max_abs_diff, result.num_differing, result.num_outputs = max_diff, differing, total
    result.allowances = applicable_allowances(model_bytes)
    if differing == 0:
        result.passed = True
    else:
        bound = max((a["bound_lsb"] for a in result.allowances), default=0)
        result.passed = bool(result.allowances) and max_diff <= bound
    return result


def make_validation_inputs(model_bytes, real_images_float=None, num_random=4, seed=0):
    """Random tensors over the full range of the input dtype, plus real (preprocessed float)
    images quantized with the model's input scale and zero point."""
    spec = tflite_info(model_bytes)["inputs"][0]
    dtype = np.dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(num_random):
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            inputs.append(rng.integers(info.min, info.max, size=shape, endpoint=True,
                                       dtype=np.int64).astype(dtype))
        else:
            inputs.append(rng.uniform(0.0, 1.0, size=shape).astype(dtype))
    if real_images_float is not None:
        images = np.asarray(real_images_float, dtype=np.float32)
        if images.ndim == len(shape) - 1:
            images = images[None]
        for img in images:
            inputs.append(quantize(img.reshape(shape), spec["scale"], spec["zero_point"], dtype))
    return inputs
