"""The firmware's C decoder of detector outputs (firmware_export/detect/tfuav_detect.c) against
tfuav.runtime's numpy decoder: hand-built outputs with known boxes, random outputs, the real
output of a converted detector, on the host (gcc) and on an emulated Cortex-M7 (QEMU)."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import functools
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from firmware_helpers import CPU_FLAGS, QEMU
from helpers import REPO
from tfuav.runtime.detect import decode_head, decode_head_int8, min_passing_level
from tfuav.runtime.quant import dequantize

DETECT_DIR = REPO / "firmware_export" / "detect"
PLATFORM_DIR = REPO / "firmware_export" / "platform"
C_DIR = REPO / "tests" / "c"
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SIGMOID = (1 / 256, -128)  # TFLite's LOGISTIC output quantization


def _bits(value):
    return f"{int(np.float32(value).view(np.uint32)):08x}"


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def parse_boxes(text):
    """(min_q, [[(class, score, x, y, w, h) as bit-pattern strings], ...] or an error code)."""
    lines = iter(text.split("\n"))
    min_q = int(next(lines).split()[1])
    results = []
    for line in lines:
        if line.startswith("tensor "):
            n = int(line.split()[2])
            results.append([tuple(next(lines).split()[1:]) for _ in range(n)] if n >= 0 else n)
    return min_q, results


def numpy_boxes(q, num_classes, stride, top_k, threshold, scale=SIGMOID[0],
                zero_point=SIGMOID[1]):
    """tfuav.runtime's boxes of one int8 output in parse_boxes' form; the int8 decoder must
    equal decode_head on the dequantised output, bit for bit."""
    boxes, scores, classes = decode_head_int8(q, scale, zero_point, num_classes, stride,
                                              top_k, threshold)
    f_boxes, f_scores, f_classes = decode_head(dequantize(q, scale, zero_point), num_classes,
                                               stride, top_k, threshold)
    assert boxes.tobytes() == f_boxes.tobytes() and scores.tobytes() == f_scores.tobytes()
    assert classes.tolist() == f_classes.tolist()
    return [(str(int(c)), _bits(s), *map(_bits, b)) for b, s, c in zip(boxes, scores, classes)]


@pytest.fixture(scope="module")
def detect_cli(tmp_path_factory):
    """tests/c/detect_cli.c and the decoder, compiled by the host gcc (warnings are errors)."""
    exe = tmp_path_factory.mktemp("detect_cli") / "detect_cli"
    _run(["gcc", *WARNINGS, "-O2", f"-I{DETECT_DIR}", str(C_DIR / "detect_cli.c"),
          str(DETECT_DIR / "tfuav_detect.c"), "-o", str(exe)])
    return exe


def c_boxes(cli, tmp_path, tensors, num_classes, stride, top_k, threshold, scale=SIGMOID[0],
            zero_point=SIGMOID[1], work_words=None):
    tensors = [np.asarray(t, np.int8) for t in tensors]
    h, w, depth = tensors[0].shape[-3:]
    assert depth == num_classes + 4
    data = tmp_path / "tensors.bin"
    data.write_bytes(b"".join(t.tobytes() for t in tensors))
    args = [str(cli), str(data), h, w, num_classes, stride, _bits(scale), zero_point,
            _bits(threshold), top_k] + ([work_words] if work_words is not None else [])
    return parse_boxes(_run([str(a) for a in args]))


def _blank(h, w, c, q=-128):
    return np.full((h, w, c + 4), q, np.int8)


def _f(text_bits):
    return float(np.uint32(int(text_bits, 16)).view(np.float32))


def _as_floats(boxes):
    return [(int(c), *(_f(v) for v in rest)) for c, *rest in boxes]


# --- (a) hand-built outputs with known boxes ------------------------------------------------

def test_known_boxes_borders_and_clipping(detect_cli, tmp_path):
    """6x8 grid, 2 classes, stride 4: input 32x24 pixels. Score and fractions: (q + 128) / 256."""
    q = _blank(6, 8, 2)
    # class 0 peak at x=3, y=2, score 230/256; width 64/256 of 32 px = 8 px, height 128/256 of
    # 24 px = 12 px; offset (0.5, 0.25) cell -> centre (14, 9) px -> box (10, 3, 8, 12)
    q[2, 3, 0] = 102
    q[2, 3, 2:6] = (-64, 0, 0, -64)
    q[2, 4, 0] = 101                                   # lower neighbour: suppressed
    q[2, 4, 1] = 120                                   # other class beside it: its own peak
    # class 1 peak in the top-left corner (only 3 neighbours), score 248/256, size 0.5 of
    # 32x24 px = 16x12 px, offset 0: centre (0, 0) -> box (-8, -6, 16, 12) clipped to (0, 0, 8, 6)
    q[0, 0, 1] = 120
    q[0, 0, 2:6] = (0, 0, -128, -128)
    # class 0 peak in the bottom-right corner, score 129/256, size 255/256 of the image
    # (31.875 x 23.90625 px), offset (255/256, 255/256) cell: centre (31.984375, 23.984375)
    # -> x 16.046875..47.921875, clipped to 32; y 12.03125..35.9375, clipped to 24
    q[5, 7, 0] = 1
    q[5, 7, 2:6] = (127, 127, 127, 127)
    min_q, [got] = c_boxes(detect_cli, tmp_path, [q], 2, 4, top_k=10, threshold=0.3)
    expected = [  # equal scores: lower (y, x, class) index first
        (1, 248 / 256, 0.0, 0.0, 8.0, 6.0),
        (1, 248 / 256, 16.0, 8.0, 0.0, 0.0),         # (x=4, y=2): size and offset 0
        (0, 230 / 256, 10.0, 3.0, 8.0, 12.0),
        (0, 129 / 256, 16.046875, 12.03125, 15.953125, 11.96875),
    ]
    assert _as_floats(got) == expected
    assert got == numpy_boxes(q, 2, 4, 10, 0.3)
    assert min_q == -128 + 77  # first (q + 128) / 256 >= 0.3: 77 / 256 = 0.30078125


def test_plateaus_ties_and_top_k(detect_cli, tmp_path):
    q = _blank(5, 5, 3)
    q[1:3, 1:3, 2] = 50            # a 2x2 plateau: all four cells are peaks
    q[4, 4, 0] = q[4, 4, 1] = 50   # two classes tie in one cell: both are peaks
    q[0, 4, 2] = 50
    for top_k in (1, 3, 7, 50):
        _, [got] = c_boxes(detect_cli, tmp_path, [q], 3, 2, top_k=top_k, threshold=0.1)
        # every score is equal: ranked by flattened (y, x, class) index
        order = [(0, 4, 2), (1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2), (4, 4, 0), (4, 4, 1)]
        assert len(got) == min(top_k, 7)                  # fewer peaks than K: all of them
        assert [int(b[0]) for b in got] == [c for _, _, c in order][:top_k]
        centres = [(_f(b[2]) + _f(b[4]) / 2, _f(b[3]) + _f(b[5]) / 2) for b in got]
        # sizes and offsets are 0 (q = -128): box of zero size at the cell's corner
        assert centres == [(2.0 * x, 2.0 * y) for y, x, _ in order][:top_k]
        assert got == numpy_boxes(q, 3, 2, top_k, 0.1)


def test_threshold_exactly_on_a_value(detect_cli, tmp_path):
    q = _blank(3, 10, 1)
    for x, v in enumerate((-1, 0, 1, -102, -103)):   # scores 127, 128, 129, 26, 25 / 256
        q[1, 2 * x, 0] = v                            # apart: all are peaks
    cases = {0.5: [1, 0], 0.1: [1, 0, -1, -102], 129 / 256: [1], 1.5: []}
    for threshold, kept in cases.items():
        min_q, [got] = c_boxes(detect_cli, tmp_path, [q], 1, 4, top_k=10, threshold=threshold)
        assert [round(_f(b[1]) * 256) - 128 for b in got] == kept, threshold
        assert got == numpy_boxes(q, 1, 4, 10, threshold)
        assert min_q == min_passing_level(np.int8, *SIGMOID, threshold)
    assert min_passing_level(np.int8, *SIGMOID, 0.5) == 0      # 128 / 256 == 0.5 passes
    assert min_passing_level(np.int8, *SIGMOID, 0.1) == -102   # 26 / 256 > 0.1 > 25 / 256
    assert min_passing_level(np.int8, *SIGMOID, 1.5) == 128    # nothing passes


def test_bad_work_buffer_and_config_are_errors(detect_cli, tmp_path):
    q = _blank(4, 4, 1)
    q[1, 1, 0] = 100
    _, [got] = c_boxes(detect_cli, tmp_path, [q], 1, 4, top_k=5, threshold=0.3,
                       work_words=9)                  # needs 2 * 5
    assert got == -2
    _, [got] = c_boxes(detect_cli, tmp_path, [q], 1, 0, top_k=5, threshold=0.3)
    assert got == -1
    _, [got] = c_boxes(detect_cli, tmp_path, [q], 1, 4, top_k=5, threshold=0.3, scale=0.0)
    assert got == -1
    _, [got] = c_boxes(detect_cli, tmp_path, [q], 1, 4, top_k=5, threshold=0.3, work_words=10)
    assert len(got) == 1


# --- (b) random outputs ---------------------------------------------------------------------

@pytest.mark.parametrize("h, w, c, stride, top_k, threshold", [
    (9, 11, 3, 4, 20, 0.6), (1, 1, 1, 4, 5, 0.0), (16, 16, 4, 4, 100, 0.3),
    (5, 13, 2, 8, 3, 0.05), (7, 7, 10, 1, 50, 0.5)])
def test_random_outputs_give_identical_boxes(detect_cli, tmp_path, h, w, c, stride, top_k,
                                             threshold):
    rng = np.random.default_rng(h * 1000 + w)
    tensors = []
    for k in range(40):
        low = int(rng.integers(-128, 120))
        q = rng.integers(low, 128, (h, w, c + 4)).astype(np.int8)
        if k % 4 == 0:   # few distinct levels: many plateaus and ties
            q[..., :c] = rng.choice(np.array([-128, 0, 77, 77, 127], np.int8), (h, w, c))
        tensors.append(q)
    _, got = c_boxes(detect_cli, tmp_path, tensors, c, stride, top_k, threshold)
    assert got == [numpy_boxes(q, c, stride, top_k, threshold) for q in tensors]
    assert sum(len(g) for g in got) > 0


def test_other_quantization_is_identical_too(detect_cli, tmp_path):
    """A scale that is not a power of two (rounding in every step): still the same floats,
    since both sides round each operation to float32 in the same order."""
    rng = np.random.default_rng(7)
    tensors = [rng.integers(-128, 128, (6, 9, 6)).astype(np.int8) for _ in range(30)]
    scale, zero_point = 0.0123, 5
    _, got = c_boxes(detect_cli, tmp_path, tensors, 2, 3, 25, 0.7, scale=scale,
                     zero_point=zero_point)
    assert got == [numpy_boxes(q, 2, 3, 25, 0.7, scale, zero_point) for q in tensors]


# --- (c) a real converted detector, reference kernels ---------------------------------------

@functools.lru_cache(maxsize=None)
def detector_tflite(size=32, num_classes=3, seed=0):
    """A small detector-shaped int8 model: convolutions to stride 4, a 1x1 head of
    num_classes + 4 channels and a final sigmoid; random weights. Returns (tflite bytes,
    float representative images)."""
    from tfuav.convert import to_int8_tflite
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    out = L.Conv2D(num_classes + 4, 1, activation="sigmoid")(x)
    rng = np.random.default_rng(seed)
    # smooth random images: blurred noise, so that the heatmap has structure
    noise = rng.uniform(0, 1, (12, size // 4, size // 4, 3)).astype(np.float32)
    images = tf.image.resize(noise, (size, size), method="bicubic").numpy().clip(0, 1)
    return to_int8_tflite(tf.keras.Model(inp, out), images[:8]), images


def reference_outputs(model_bytes, images):
    """The int8 outputs of the TFLite reference kernels for float images."""
    from ai_edge_litert import interpreter as litert
    interp = litert.Interpreter(model_content=model_bytes,
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    outputs = []
    for image in images:
        q = np.clip(np.round(image / scale) + zero_point, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q[None])
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"])[0].copy())
    return outputs, out["quantization"]


@pytest.fixture(scope="module")
def real_outputs():
    model_bytes, images = detector_tflite()
    outputs, quantization = reference_outputs(model_bytes, images)
    assert quantization == SIGMOID        # what the converter gives LOGISTIC outputs
    assert outputs[0].shape == (8, 8, 7)
    return outputs


def test_real_detector_output_on_the_host(detect_cli, tmp_path, real_outputs):
    for threshold, top_k in ((0.5, 20), (0.0, 300)):
        _, got = c_boxes(detect_cli, tmp_path, real_outputs, 3, 4, top_k, threshold)
        assert got == [numpy_boxes(q, 3, 4, top_k, threshold) for q in real_outputs]
        assert all(len(g) > 0 for g in got)


def _c_array(name, arrays):
    rows = ",\n".join("  {" + ", ".join(str(int(v)) for v in np.ravel(a)) + "}" for a in arrays)
    return f"static const int8_t {name}[{len(arrays)}][{np.size(arrays[0])}] = {{\n{rows}\n}};\n"


def test_decoder_on_an_emulated_cortex_m7(tmp_path, real_outputs):
    """The decoder cross-compiled for Cortex-M7 decodes an embedded output in QEMU mps2-an500
    (semihosting) into exactly numpy's boxes."""
    top_k, threshold = 15, 0.45
    (tmp_path / "detect_case.h").write_text(
        "#include <stdint.h>\n"
        f"#define CASE_COUNT {len(real_outputs)}\n#define CASE_H 8\n#define CASE_W 8\n"
        f"#define CASE_C 3\n#define CASE_STRIDE 4\n#define CASE_TOP_K {top_k}\n"
        f"#define CASE_SCALE_BITS 0x{_bits(SIGMOID[0])}u\n#define CASE_ZERO_POINT {SIGMOID[1]}\n"
        f"#define CASE_THRESHOLD_BITS 0x{_bits(threshold)}u\n"
        + _c_array("kCaseOutputs", real_outputs))
    machine, ldscript = QEMU["cortex-m7"]
    flags = CPU_FLAGS["cortex-m7"]
    # the decoder itself compiles without a warning for both Cortex-M targets
    for target in ("cortex-m7", "cortex-m4"):
        _run(["arm-none-eabi-gcc", *CPU_FLAGS[target], *WARNINGS, "-O2", "-c",
              str(DETECT_DIR / "tfuav_detect.c"), "-o", str(tmp_path / "detect.o")])
    elf = tmp_path / "detect.elf"
    _run(["arm-none-eabi-gcc", *flags, "-std=c99", "-O2", "-nostartfiles",
          "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections",
          f"-T{PLATFORM_DIR / ldscript}", f"-I{tmp_path}", f"-I{DETECT_DIR}", f"-I{PLATFORM_DIR}",
          str(C_DIR / "detect_embedded.c"), str(DETECT_DIR / "tfuav_detect.c"),
          *(str(PLATFORM_DIR / f) for f in ("startup_cortex_m.c", "cycles.c",
                                            "port_semihosting.c")),
          "-o", str(elf)])
    text = _run(["qemu-system-arm", "-M", machine, "-nographic", "-semihosting", "-kernel",
                 str(elf)], timeout=120)
    min_q, got = parse_boxes(text)
    assert min_q == min_passing_level(np.int8, *SIGMOID, threshold)
    assert got == [numpy_boxes(q, 3, 4, top_k, threshold) for q in real_outputs]
    assert sum(len(g) for g in got) > len(real_outputs)
