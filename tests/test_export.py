"""Cortex-M firmware folders: generated sources, arena proof, golden vectors, fit and op checks."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import json
import re
import subprocess
import zlib

import numpy as np
import pytest
import tensorflow as tf
import yaml
from ai_edge_litert import interpreter as litert

from firmware_helpers import (C_DIR, CPU_FLAGS, as_array, c_arrays, c_define,
                              compile_tflm_free_sources, golden_vectors, run_boot_check)
from helpers import VWW_DIR, convert_zoo_model, error_line, run_cli, small_cnn_tflite
from tfuav.convert import to_int8_tflite
from tfuav.export.fit import FitError
from tfuav.export.opcheck import UnsupportedOpError
from tfuav.export.scratch import op_scratch_bytes
from tfuav.export.tflm import export_tflm
from tfuav.targets import RUNTIME_DIR, load_target
from tfuav.validate import TflmRunError, run_reference, run_tflm

VWW_TFLITE = VWW_DIR / "vww_96_int8.tflite"
QUIET = dict(echo=lambda *_: None)


@pytest.fixture(scope="module")
def vww_bytes():
    return VWW_TFLITE.read_bytes()  # a missing fixture is a failure, not a skip


@pytest.fixture(scope="module")
def vww_folder(tmp_path_factory, vww_bytes):
    out = tmp_path_factory.mktemp("vww")
    summary = export_tflm(vww_bytes, load_target("cortex-m7"), out, name="vww_96",
                          golden_count=2, **QUIET)
    return out / "firmware", summary


def _model_ops_from_file(model_bytes):
    """Op names as the TFLite interpreter reads them: independent of tfuav's flatbuffer reader."""
    interp = litert.Interpreter(model_content=model_bytes)
    return [d["op_name"] for d in interp._get_ops_details()]


def _resolver_ops(folder):
    text = (folder / "model_ops.h").read_text()
    calls = re.findall(r"resolver\.(Add\w+)\(\)", text)
    count = int(re.search(r"MicroMutableOpResolver<kModelOpCount>", text) and
                re.search(r"constexpr int kModelOpCount = (\d+);", text).group(1))
    by_call = {v["call"]: op for op, v in
               yaml.safe_load((RUNTIME_DIR / "tflm.yaml").read_text())["ops"].items()}
    return [by_call[c] for c in calls], count


def _check_folder(folder, model_bytes, target="cortex-m7"):
    """What every exported folder must satisfy."""
    compile_tflm_free_sources(folder, target)
    # model_data.cc holds exactly the model's bytes, 16-byte aligned, with its size
    data_cc = (folder / "model_data.cc").read_text()
    arrays = c_arrays(data_cc)
    assert len(arrays) == 1 and list(arrays.values())[0] == model_bytes
    assert "alignas(16) const unsigned char g_" in data_cc
    assert f"_model_data_size = {len(model_bytes)};" in data_cc
    # the resolver registers each op of the model once, and N is their count
    ops, count = _resolver_ops(folder)
    assert sorted(ops) == sorted(set(_model_ops_from_file(model_bytes)))
    assert count == len(ops)
    # the arena in model_config.h runs TFLM, and the golden outputs reproduce bit for bit
    config = (folder / "model_config.h").read_text()
    arena = int(c_define(config, "MODEL_ARENA_BYTES"))
    ins, outs = golden_vectors(folder)
    spec = litert.Interpreter(model_content=model_bytes).get_input_details()[0]
    inputs = [as_array(x, spec["dtype"], spec["shape"]) for x in ins]
    got = run_tflm(model_bytes, inputs, arena_size=arena)
    assert [np.ascontiguousarray(g).tobytes() for g in got] == outs
    return arena, inputs, outs


def test_vww_folder_compiles_and_reproduces_its_golden_outputs(vww_folder, vww_bytes):
    folder, summary = vww_folder
    arena, inputs, outs = _check_folder(folder, vww_bytes)
    assert len(outs) == 2
    # the golden outputs are also what the TFLite reference kernels compute (VWW: exactly)
    ref = run_reference(vww_bytes, inputs)
    assert [np.ascontiguousarray(r).tobytes() for r in ref] == outs
    # golden inputs are real images, not noise: neighbouring pixels are correlated
    img = inputs[0][0].astype(np.float32)
    assert np.corrcoef(img[:, :-1].ravel(), img[:, 1:].ravel())[0, 1] > 0.5
    assert summary["arena"]["arena_bytes"] == arena
    assert json.loads((folder / "firmware.json").read_text())["arena"]["arena_bytes"] == arena


def test_vww_arena_is_measured_not_guessed(vww_folder, vww_bytes):
    folder, summary = vww_folder
    config = (folder / "model_config.h").read_text()
    measured = int(c_define(config, "MODEL_ARENA_MEASURED_BYTES"))
    arena = int(c_define(config, "MODEL_ARENA_BYTES"))
    assert measured == 103_680            # the fixture README's figure for the x86-64 wheel
    assert measured < arena <= measured + 16 * 1024
    assert arena % 16 == 0
    ins, _ = golden_vectors(folder)
    x = [as_array(ins[0], np.int8, (1, 96, 96, 3))]
    run_tflm(vww_bytes, x, arena_size=measured)  # the recorded figure itself is enough ...
    with pytest.raises(TflmRunError):           # ... and 1 KiB less is not
        run_tflm(vww_bytes, x, arena_size=measured - 1024)


def test_exported_arrays_boot_on_an_emulated_cortex_m7(vww_folder, vww_bytes, tmp_path):
    folder, _ = vww_folder
    lines = run_boot_check(folder, tmp_path, "cortex-m7")
    ins, outs = golden_vectors(folder)
    assert f"model {len(vww_bytes)} {zlib.crc32(vww_bytes):08x}" in lines
    assert f"golden_input {zlib.crc32(b''.join(ins)):08x}" in lines
    assert f"golden_output {zlib.crc32(b''.join(outs)):08x}" in lines
    arena = int(c_define((folder / "model_config.h").read_text(), "MODEL_ARENA_BYTES"))
    assert f"arena {arena} 0 0" in lines  # whole arena writable, 16-byte aligned


def test_export_is_deterministic(vww_folder, vww_bytes, tmp_path):
    folder, _ = vww_folder
    export_tflm(vww_bytes, load_target("cortex-m7"), tmp_path, name="vww_96", golden_count=2,
                **QUIET)
    again = tmp_path / "firmware"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name


def test_vww_is_too_big_for_cortex_m4_and_fits_cortex_m7(vww_bytes, vww_folder, tmp_path):
    _, m7 = vww_folder
    assert m7["fit"]["fits"] is True
    with pytest.raises(FitError) as err:
        export_tflm(vww_bytes, load_target("cortex-m4"), tmp_path, name="vww", **QUIET)
    msg = str(err.value)
    m4 = load_target("cortex-m4")
    arena = m7["arena"]["arena_bytes"]
    ram = arena + 96 * 96 * 3 + 2 + 2048   # arena + input and output buffers + stack
    assert f"RAM {ram:,} bytes" in msg and f"budget of {m4.ram_budget:,}" in msg
    assert f"by {ram - m4.ram_budget:,}" in msg
    assert "structured channel pruning" in msg and "smaller input" in msg
    # flash: the model plus the measured runtime core and one kernel per distinct op
    code = yaml.safe_load((RUNTIME_DIR / "tflm.yaml").read_text())["code_bytes"]["reference"]
    ops = set(_model_ops_from_file(vww_bytes))
    assert m7["fit"]["code_bytes"] == code["base"] + sum(code["ops"][op] for op in ops)
    assert m7["fit"]["flash_bytes"] == len(vww_bytes) + m7["fit"]["code_bytes"]
    assert not (tmp_path / "firmware").exists()  # nothing half-written
    # --force downgrades it to a warning and packages anyway
    warnings = []
    forced = export_tflm(vww_bytes, m4, tmp_path, name="vww", force=True, echo=warnings.append)
    assert forced["fit"]["fits"] is False
    assert any("warning" in w and "does not fit cortex-m4" in w for w in warnings)
    assert (tmp_path / "firmware" / "mps2_an386.ld").is_file()


def test_cortex_m4_folder_boots_on_an_emulated_cortex_m4(tmp_path):
    tfl = small_cnn_tflite()
    summary = export_tflm(tfl, load_target("cortex-m4"), tmp_path, name="small_cnn", **QUIET)
    folder = tmp_path / "firmware"
    _check_folder(folder, tfl, "cortex-m4")
    assert summary["fit"]["fits"] is True
    lines = run_boot_check(folder, tmp_path, "cortex-m4")
    assert f"model {len(tfl)} {zlib.crc32(tfl):08x}" in lines


@pytest.mark.slow
@pytest.mark.parametrize("name", ["glimmernet", "takunet"])
def test_zoo_model_folder(name, tmp_path):
    tfl, rep = convert_zoo_model(name)
    summary = export_tflm(tfl, load_target("cortex-m7"), tmp_path, name=name,
                          labels=["collapsed_building", "fire", "flood", "normal"],
                          golden_images=rep[:2], golden_count=2, **QUIET)
    folder = tmp_path / "firmware"
    _check_folder(folder, tfl)
    assert '"collapsed_building", "fire", "flood", "normal"' in (folder / "model_config.h").read_text()
    assert summary["golden"]["tflm_vs_reference"]["passed"] is True
    assert summary["fit"]["fits"] is True


class WingSqrt(tf.keras.layers.Layer):
    """A layer whose int8 SQRT TFLM cannot run."""

    def call(self, x):
        return tf.math.sqrt(tf.nn.relu(x) + 1.0)


def _sqrt_model_tflite():
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="stem")(inp)
    x = WingSqrt(name="wing_sqrt")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(2, name="head")(x)
    rep = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    return to_int8_tflite(tf.keras.Model(inp, out), rep)


def test_unsupported_op_stops_the_export_naming_op_and_layer(tmp_path):
    tfl = _sqrt_model_tflite()
    assert "SQRT" in _model_ops_from_file(tfl)
    with pytest.raises(UnsupportedOpError) as err:
        export_tflm(tfl, load_target("cortex-m7"), tmp_path, name="sqrt", **QUIET)
    assert "op SQRT" in str(err.value) and "'wing_sqrt'" in str(err.value)
    assert not (tmp_path / "firmware").exists()
    # the same through the command line: one line, exit status 2
    model = tmp_path / "sqrt.tflite"
    model.write_bytes(tfl)
    line = error_line(run_cli("export", model, "--target", "cortex-m7", "--out", tmp_path / "o"))
    assert "SQRT" in line and "wing_sqrt" in line
    assert not (tmp_path / "o" / "firmware").exists()


def test_cmsis_nn_scratch_follows_the_library_rules():
    """Hand-built conv 3x3 on 10 input channels: 2 * align4(3*3*10) int16 = 368 bytes;
    depthwise 5x5 on 8 channels: 8*5*5 int16 = 400 bytes."""
    class T:
        def __init__(self, shape):
            self.shape = shape

    class Graph:
        tensors = [T([1, 8, 8, 10]), T([16, 3, 3, 10]), T([1, 8, 8, 16]),
                   T([1, 8, 8, 8]), T([1, 5, 5, 8])]

    class Op:
        def __init__(self, inputs, outputs):
            self.inputs, self.outputs = inputs, outputs

    assert op_scratch_bytes("CONV_2D", Graph, Op([0, 1], [2])) == 368
    assert op_scratch_bytes("DEPTHWISE_CONV_2D", Graph, Op([3, 4], [3])) == 400
    assert op_scratch_bytes("RESHAPE", Graph, Op([0], [2])) == 0


def test_cli_export_of_the_vww_fixture(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("no_person\nperson\n")
    result = run_cli("export", VWW_TFLITE, "--target", "cortex-m7", "--out", tmp_path,
                     "--labels", labels)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "arena 109," in result.stdout or "arena" in result.stdout
    config = (tmp_path / "firmware" / "model_config.h").read_text()
    assert '{"no_person", "person"}' in config
    assert "g_vww_96_int8_model_data" in config


def test_cli_export_errors(tmp_path):
    line = error_line(run_cli("export", tmp_path / "none.tflite", "--target", "cortex-m7"))
    assert "none.tflite" in line
    h5 = VWW_DIR / "vww_96.h5"
    assert ".tflite" in error_line(run_cli("export", h5, "--target", "cortex-m7"))
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    line = error_line(run_cli("export", VWW_TFLITE, "--target", "cortex-m7", "--labels", labels,
                              "--out", tmp_path))
    assert "3 labels" in line and "2 classes" in line
    assert not (tmp_path / "firmware").exists()


def test_a_board_is_a_yaml_file(tmp_path):
    """A user's own board (STM32F746 class: 1 MB flash, 320 KB SRAM) as a YAML file: the fit
    check uses its budgets."""
    board = tmp_path / "f746.yaml"
    board.write_text(
        "name: stm32f746\ndescription: STM32F746 class\nfamily: cortex-m\nruntime: tflm\n"
        "chip: STM32F746\ncpu_flags: [-mcpu=cortex-m7, -mthumb, -mfpu=fpv5-sp-d16, "
        "-mfloat-abi=hard]\ntflm_arch: cortex-m7+fp\nclock_mhz: 216\nflash_bytes: 1048576\n"
        "ram_bytes: 327680\narena_region_bytes: 245760\nreserved_fraction: 0.25\n"
        "linker_script: stm32h743\nqemu_machine: mps2-an500\nqemu_linker_script: mps2_an500\n")
    result = run_cli("export", VWW_TFLITE, "--target", board, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    fit = json.loads((tmp_path / "firmware" / "firmware.json").read_text())["fit"]
    assert fit["target"] == "stm32f746"
    assert fit["ram_budget"] == 327680 * 3 // 4 and fit["flash_budget"] == 1048576 * 3 // 4
    # the same board with 256 KB of flash: VWW's 333 KB model cannot fit
    board.write_text(board.read_text().replace("flash_bytes: 1048576", "flash_bytes: 262144"))
    line = error_line(run_cli("export", VWW_TFLITE, "--target", board, "--out", tmp_path / "o"))
    assert "does not fit stm32f746: flash" in line and "budget of 196,608" in line
    board.write_text("name: x\nclock: 5\n")
    line = error_line(run_cli("export", VWW_TFLITE, "--target", board))
    assert "f746.yaml" in line and "clock" in line


def _grouped_model():
    L = tf.keras.layers
    inp = tf.keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", name="stem")(inp)
    x = L.Conv2D(4, 3, padding="same", groups=2, name="grouped")(x)
    x = L.Lambda(lambda t: tf.gather(t, [3, 2, 1, 0], axis=-1), name="shuffle")(x)
    return tf.keras.Model(inp, L.Conv2D(4, 1, name="head")(x))


def _rep():
    return (np.random.default_rng(k).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)
            for k in range(8))


def test_op_check_knows_types_and_grouped_convolutions():
    from tfuav.export.opcheck import unsupported_ops
    from tfuav.targets import load_runtime
    runtime = load_runtime("tflm")
    model = _grouped_model()
    # int8: TFLM runs grouped convolutions and GATHER
    int8 = to_int8_tflite(model, np.concatenate(list(_rep())))
    assert unsupported_ops(int8, runtime) == []
    # 16x8: TFLM's int16 conv ignores groups, and GATHER has no int16 kernel
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in _rep())
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int16
    problems = unsupported_ops(conv.convert(), runtime)
    # (the converter drops the grouped convolution's layer name; GATHER keeps its own)
    assert [(p["op"], p["layer"]) for p in problems] == [("CONV_2D", None), ("GATHER", "shuffle")]
    assert "grouped 16x8" in problems[0]["problem"] and "int16" in problems[1]["problem"]


# --- detectors ------------------------------------------------------------------------------

DETECT_LABELS = ["person", "car", "boat"]


def _parse_golden_boxes(folder):
    """[[(class, score, x, y, w, h), ...] per golden output] read back from golden_data.cc."""
    text = (folder / "golden_data.cc").read_text()
    counts = [int(v) for v in re.search(r"g_golden_box_count\[GOLDEN_COUNT\] = \{([^}]*)\}",
                                        text).group(1).split(",")]
    table = text[text.index("g_golden_boxes[GOLDEN_COUNT]"):]
    rows = re.findall(r"\{([-0-9.e+]+)f, ([-0-9.e+]+)f, ([-0-9.e+]+)f, ([-0-9.e+]+)f, "
                      r"([-0-9.e+]+)f, (\d+)\}", table)
    boxes = [(int(c), float(s), float(x), float(y), float(w), float(h))
             for x, y, w, h, s, c in rows]
    assert sum(counts) == len(boxes)
    starts = np.cumsum([0] + counts)
    return [boxes[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _numpy_golden_boxes(outputs, detection, quantization=(1 / 256, -128)):
    from tfuav.runtime.detect import decode_head_int8
    result = []
    for out in outputs:
        q = as_array(out, np.int8, (8, 8, detection.num_classes + 4))
        boxes, scores, classes = decode_head_int8(q, *quantization, detection.num_classes,
                                                  detection.stride, detection.top_k,
                                                  detection.score_threshold)
        result.append([(int(c), float(s), *map(float, b))
                       for b, s, c in zip(boxes, scores, classes)])
    return result


def _golden_check_on_qemu(folder, work):
    """tests/c/detect_golden_main.c linked with the folder's decoder, box check, golden data
    and platform layer (no TFLM), run in QEMU: (exit status, output lines)."""
    elf = work / "detect_golden.elf"
    cmd = ["arm-none-eabi-gcc", *CPU_FLAGS["cortex-m7"], "-O2", "-fno-exceptions",
           "-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections",
           f"-T{folder / 'mps2_an500.ld'}", f"-I{folder}", str(C_DIR / "detect_golden_main.c"),
           *(str(folder / f) for f in ("tfuav_detect.c", "detect_golden.c", "startup_cortex_m.c",
                                       "cycles.c", "port_semihosting.c", "golden_data.cc")),
           "-o", str(elf)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    proc = subprocess.run(["qemu-system-arm", "-M", "mps2-an500", "-nographic", "-semihosting",
                           "-kernel", str(elf)], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout.splitlines()


@pytest.fixture(scope="module")
def detector_folder(tmp_path_factory):
    from test_detect_c import detector_tflite
    from tfuav.export.detection import Detection
    tfl, images = detector_tflite()
    detection = Detection(num_classes=3, stride=4, top_k=10, score_threshold=0.45)
    out = tmp_path_factory.mktemp("detector")
    summary = export_tflm(tfl, load_target("cortex-m7"), out, name="uav_det",
                          labels=DETECT_LABELS, golden_images=images[:2], golden_count=2,
                          detection=detection, **QUIET)
    return out / "firmware", tfl, detection, summary


def test_detector_folder_carries_the_decoder_and_golden_boxes(detector_folder):
    folder, tfl, detection, summary = detector_folder
    _check_folder(folder, tfl)                    # as every folder, TFLM reproduces the outputs
    for source in ("tfuav_detect.c", "detect_golden.c"):   # TFLM-free C, no warning
        proc = subprocess.run(["arm-none-eabi-gcc", *CPU_FLAGS["cortex-m7"], "-std=c99", "-Wall",
                               "-Wextra", "-Werror", "-c", "-o", "/dev/null", f"-I{folder}",
                               str(folder / source)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    config = (folder / "model_config.h").read_text()
    assert [c_define(config, f"MODEL_DETECT_{k}") for k in
            ("NUM_CLASSES", "GRID_HEIGHT", "GRID_WIDTH", "STRIDE", "TOP_K")] == \
        ["3", "8", "8", "4", "10"]
    threshold = c_define(config, "MODEL_DETECT_SCORE_THRESHOLD")
    assert np.float32(float(threshold.rstrip("f"))) == np.float32(0.45)
    assert '{"person", "car", "boat"}' in config
    # the golden boxes are the numpy decoder's boxes of the golden outputs
    _, outs = golden_vectors(folder)
    expected = _numpy_golden_boxes(outs, detection)
    assert _parse_golden_boxes(folder) == expected
    assert all(len(b) > 0 for b in expected)
    assert summary["detection"]["golden_boxes"] == [len(b) for b in expected]
    assert json.loads((folder / "firmware.json").read_text())["detection"]["grid"] == [8, 8]
    # the harness and build files include the box check
    assert '#include "detect_golden.h"' in (folder / "main.cc").read_text()
    assert "tfuav_detect_check_golden(g, interpreter->output(0)->data.int8)" in \
        (folder / "main.cc").read_text()
    for build in ("Makefile", "CMakeLists.txt"):
        assert "tfuav_detect.c detect_golden.c" in (folder / build).read_text()
    assert "tfuav_detect_decode" in (folder / "README.md").read_text()


def test_detector_folder_checks_boxes_on_an_emulated_cortex_m7(detector_folder, tmp_path):
    folder, _, detection, _ = detector_folder
    status, lines = _golden_check_on_qemu(folder, tmp_path)
    assert status == 0 and lines[-1] == "PASS", lines
    events = [json.loads(ln) for ln in lines if ln.startswith("{")]
    printed = [[(e["class"], e["score"], e["x"], e["y"], e["w"], e["h"])
                for e in events if e["event"] == "box" and e["golden"] == g] for g in (0, 1)]
    _, outs = golden_vectors(folder)
    assert printed == _numpy_golden_boxes(outs, detection)   # exact decimals of exact floats
    assert all(e["label"] == DETECT_LABELS[e["class"]] for e in events if e["event"] == "box")
    summaries = [e for e in events if e["event"] == "boxes"]
    assert [e["mismatches"] for e in summaries] == [0, 0]
    # a golden box that differs in one float is caught
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in folder.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    text = (broken / "golden_data.cc").read_text()
    box = re.search(r"\{([-0-9.e+]+)f, ", text[text.index("g_golden_boxes"):])
    start = text.index("g_golden_boxes") + box.start(1)
    old = box.group(1)
    new = repr(float(np.nextafter(np.float32(float(old)), np.float32(1e9))))
    (broken / "golden_data.cc").write_text(text[:start] + new + text[start + len(old):])
    status, lines = _golden_check_on_qemu(broken, tmp_path)
    assert status == 1 and lines[-1] == "FAIL"
    mismatches = [json.loads(ln)["mismatches"] for ln in lines if '"event":"boxes"' in ln]
    assert mismatches == [1, 0]


def test_classifier_folder_has_no_detector_parts(vww_folder):
    folder, summary = vww_folder
    assert "detection" not in summary
    names = {p.name for p in folder.iterdir()}
    assert not names & {"tfuav_detect.c", "tfuav_detect.h", "detect_golden.c", "detect_golden.h"}
    assert "MODEL_DETECT" not in (folder / "model_config.h").read_text()
    assert "g_golden_boxes" not in (folder / "golden_data.h").read_text()
    assert "detect" not in (folder / "main.cc").read_text()
    assert "detect" not in (folder / "Makefile").read_text()
    assert "@" not in (folder / "main.cc").read_text()


def test_cli_export_of_a_detector_and_its_errors(tmp_path):
    from test_detect_c import detector_tflite
    model = tmp_path / "uav_det.tflite"
    model.write_bytes(detector_tflite()[0])
    result = run_cli("export", model, "--target", "cortex-m7", "--detector", "--classes",
                     "person,car,boat", "--max-boxes", "5", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "detector: 3 classes, stride 4, at most 5 boxes" in result.stdout
    config = (tmp_path / "firmware" / "model_config.h").read_text()
    assert '{"person", "car", "boat"}' in config and "#define MODEL_DETECT_TOP_K 5" in config
    # a classifier is not a detector: one line naming the shapes
    classifier = tmp_path / "cnn.tflite"
    classifier.write_bytes(small_cnn_tflite())
    line = error_line(run_cli("export", classifier, "--target", "cortex-m7", "--detector",
                              "--out", tmp_path / "o"))
    assert "cnn.tflite" in line and "[1, 4]" in line and "[1, H, W, C + 4]" in line
    # classes that do not match the head, a stride that does not match the shapes
    line = error_line(run_cli("export", model, "--target", "rpi", "--detector", "--classes",
                              "person,car", "--stride", "2", "--out", tmp_path / "o"))
    assert "[1, 8, 8, 7]" in line and "[1, H, W, 2 + 4]" in line
    assert not (tmp_path / "o").exists()


def test_detection_parameters_are_read_from_the_model_and_checked():
    from test_detect_c import detector_tflite
    from tfuav.convert.inspect_tflite import tflite_info
    from tfuav.errors import TfuavError
    from tfuav.export.detection import Detection
    info = tflite_info(detector_tflite()[0])          # input 32x32x3, output 8x8x(3 + 4)
    assert Detection.for_model(info) == Detection(num_classes=3, stride=4)
    assert Detection.for_model(info, top_k=7, score_threshold=0.6).grid(info) == (8, 8)
    with pytest.raises(TfuavError, match=r"input \[1, 32, 32, 3\] is not the output grid 8x8 "
                                         r"times stride 2"):
        Detection.for_model(info, stride=2)
    with pytest.raises(TfuavError, match=r"\[1, 8, 8, 7\] does not match \[1, H, W, 4 \+ 4\]"):
        Detection.for_model(info, num_classes=4)
    for bad in (dict(num_classes=0), dict(num_classes=3, stride=0), dict(num_classes=3, top_k=0),
                dict(num_classes=3, score_threshold=float("nan"))):
        with pytest.raises(TfuavError):
            Detection(**bad)
    # a float output cannot go to the firmware's int8 decoder
    from tfuav.convert import to_int8_tflite
    L = tf.keras.layers
    inp = tf.keras.Input((16, 16, 3))
    out = L.Conv2D(6, 1, strides=4, activation="sigmoid")(inp)
    rep = np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    float_out = to_int8_tflite(tf.keras.Model(inp, out), rep, float_io=True)
    with pytest.raises(TfuavError, match="int8 output; the model's output is float32"):
        export_tflm(float_out, load_target("cortex-m7"), "/nonexistent", name="f",
                    detection=Detection(2, 4), **QUIET)
