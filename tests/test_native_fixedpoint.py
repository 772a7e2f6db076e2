"""Native engine fixed-point arithmetic: the C requantization (both TFLite rounding steps
folded into one 64-bit addition) equals TFLite's SaturatingRoundingDoublingHighMul +
RoundingDivideByPOT, written out in Python from gemmlowp's definitions, on random and edge
values; and the generation-time multiplier derivation matches hand-worked cases."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
from test_native_support import HOST_CFLAGS, REPO, run_command

from tfuav.export.native.fixedpoint import quantize_multiplier

C_DIR = REPO / "tests" / "c"
KERNELS = REPO / "firmware_export" / "native"


def py_srdhm(a, b):
    if a == b == -2 ** 31:
        return 2 ** 31 - 1
    ab = a * b
    nudge = 2 ** 30 if ab >= 0 else 1 - 2 ** 30
    q = abs(ab + nudge) // 2 ** 31
    return q if ab + nudge >= 0 else -q   # C++ division truncates toward zero


def py_rdbp(x, e):
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def py_mbqm(x, m, shift):
    left, right = max(shift, 0), max(-shift, 0)
    xs = ((x << left) + 2 ** 31) % 2 ** 32 - 2 ** 31  # int32 wrap-around, as in C++
    return py_rdbp(py_srdhm(xs, m), right)


def test_requantization_matches_the_two_step_reference(tmp_path):
    exe = tmp_path / "requant"
    run_command(["gcc", *HOST_CFLAGS, f"-I{KERNELS}", str(C_DIR / "native_requant_check.c"),
                 "-o", str(exe)])
    rng = np.random.default_rng(0)
    n = 20000
    x = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, n // 2),
                        rng.integers(-70000, 70000, n // 2),
                        [0, 1, -1, 2 ** 31 - 1, -2 ** 31, 2 ** 30, -2 ** 30, -2 ** 30 - 1]])
    m = np.concatenate([rng.integers(2 ** 30, 2 ** 31, n - 8), [0, 2 ** 30, 2 ** 31 - 1] * 8])
    m = m[:x.size]
    shift = np.concatenate([rng.integers(-31, 8, n // 2), rng.integers(-12, 2, n // 2),
                            [0, -1, -31, 1, 7, -30, -2, 0]])
    triples = np.stack([x, m, shift], axis=1).astype(np.int32)
    out = run_command([str(exe)], input=triples.tobytes(), text=False).stdout
    got = np.frombuffer(out, dtype=np.int32).reshape(-1, 4)
    assert got.shape[0] == x.size
    for (xi, mi, si), (fast, two_step, hi, rd) in zip(triples.tolist(), got.tolist()):
        want = py_mbqm(xi, mi, si)
        if -2 ** 31 <= want < 2 ** 31:
            assert fast == want, (xi, mi, si)
            assert two_step == want, (xi, mi, si)
        assert hi == py_srdhm(xi, mi)
        assert rd == py_rdbp(xi, si & 31)


def test_quantize_multiplier_hand_cases():
    # 0.5 = 2^30 / 2^31 * 2^0; 0.75 = 0.75 * 2^0 -> round(0.75 * 2^31)
    assert quantize_multiplier(0.5) == (2 ** 30, 0)
    assert quantize_multiplier(0.75) == (round(0.75 * 2 ** 31), 0)
    assert quantize_multiplier(1.0) == (2 ** 30, 1)
    assert quantize_multiplier(0.1) == (round(0.8 * 2 ** 31), -3)
    # a fraction that rounds up to 2^31 renormalizes
    assert quantize_multiplier(1.0 - 2 ** -40) == (2 ** 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)


def test_probe_of_the_installed_reference_kernels():
    """The probe tells the TFLite variants apart on the installed interpreter; the generated
    FULLY_CONNECTED follows what it found (double scales only for the float requantization)."""
    from test_native_support import VWW

    from tfuav.export.native import compile_model
    from tfuav.export.native.probe import reference_arithmetic
    found = reference_arithmetic()
    assert found["rounding"] == "double"
    assert found["fc_requant"] in ("float", "fixed")
    source = compile_model(VWW.read_bytes(), "vww").files["vww.c"]
    assert ("static const double" in source) == (found["fc_requant"] == "float")


def test_fixed_point_fully_connected_variant(tmp_path):
    """FULLY_CONNECTED as TFLite computed it before its float requantization (fixed point,
    per-tensor multiplier from the float32 product of the scales), against that arithmetic
    written out in Python."""
    from test_native_support import (ModelBuilder, build_kernel_archive, host_executable, options,
                                     random_int8, run_executable)

    from tfuav.export.native import compile_model
    rng = np.random.default_rng(4)
    rows, depth, units = 5, 37, 9
    in_s, in_zp, w_s, out_s, out_zp = 0.05, -7, 0.0123, 0.21, 4
    w = rng.integers(-127, 128, (units, depth))
    bias = rng.integers(-3000, 3000, units)
    b = ModelBuilder()
    x = b.tensor((rows, depth), scale=in_s, zero_point=in_zp)
    wt = b.tensor(w.shape, scale=w_s, zero_point=0, data=w)
    bt = b.tensor((units,), "int32", scale=in_s * w_s, data=bias)
    y = b.tensor((rows, units), scale=out_s, zero_point=out_zp)
    b.op("FULLY_CONNECTED", [x, wt, bt], [y], options("FullyConnected", activation="RELU"))
    compiled = compile_model(b.build([x], [y]), "fc",
                             arithmetic={"rounding": "double", "fc_requant": "fixed"})
    exe = host_executable(compiled, tmp_path, build_kernel_archive(tmp_path))
    xs = random_int8((rows, depth), rng)
    got = run_executable(exe, [[xs]])[0].reshape(rows, units)
    m, s = quantize_multiplier(float(np.float32(np.float32(in_s) * np.float32(w_s)))
                               / float(np.float32(out_s)))
    acc = (xs.astype(np.int64) - in_zp) @ w.T + bias
    relu_min = max(-128, out_zp + round(0.0 / out_s))
    want = np.clip(np.vectorize(lambda a: py_mbqm(int(a), m, s))(acc) + out_zp, relu_min, 127)
    assert np.array_equal(got, want)
