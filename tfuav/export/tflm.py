"""The TFLM firmware folder for a Cortex-M target: model bytes as a C array, the op resolver,
the model's configuration, golden vectors, the benchmark harness, build files and the platform
layer (startup, linker scripts, port). Everything is checked before it is written: ops against
the runtime's op set, the arena by re-running TFLM with exactly the exported size, the golden
outputs against the TFLite reference kernels, and the fit against the board's budgets.

A detector (detection=Detection(...)) also gets the C decoder of its output (firmware_export/
detect/), its decoding parameters in model_config.h, and the golden boxes (tfuav's numpy
decoder on the golden outputs), which the harness checks on the target too."""
import json
from pathlib import Path

import numpy as np

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.errors import TfuavError
from tfuav.export import model_labels
from tfuav.export.csource import byte_lines, c_identifier, c_string
from tfuav.export.detection import c_float
from tfuav.export.fit import FitError, fit_check
from tfuav.export.folder import render, write_folder
from tfuav.export.opcheck import assert_ops_supported

FIRMWARE_DIR = Path(__file__).resolve().parent.parent.parent / "firmware_export"
TEMPLATE_DIR = FIRMWARE_DIR / "tflm"
PLATFORM_DIR = FIRMWARE_DIR / "platform"
DETECT_DIR = FIRMWARE_DIR / "detect"
DETECT_SOURCES = ("tfuav_detect.h", "tfuav_detect.c", "detect_golden.h", "detect_golden.c")
PLATFORM_SOURCES = ("startup_cortex_m.c", "cycles.c", "port.h", "port_semihosting.c",
                    "port_uart_template.c")
KERNELS = ("reference", "cmsis-nn")
DEFAULT_BENCH_RUNS = 10
ARENA_ALIGN = 16


def arena_plan(model_bytes, runtime):
    """Arena for the firmware: TFLM's recording allocator on the host for these exact bytes,
    plus the runtime's fixed margin and the largest CMSIS-NN scratch buffer the model's ops ask
    for (the host wheel runs reference kernels, which need none), rounded up to 16 bytes."""
    from tfuav.export.scratch import largest_cmsis_nn_scratch
    from tfuav.validate import recorded_arena_size
    recorded = recorded_arena_size(model_bytes)
    scratch = largest_cmsis_nn_scratch(model_bytes)
    total = recorded + runtime.arena_margin_bytes + scratch
    total = -(-total // ARENA_ALIGN) * ARENA_ALIGN
    return {"recorded_bytes": recorded, "margin_bytes": runtime.arena_margin_bytes,
            "cmsis_nn_scratch_bytes": scratch, "arena_bytes": total}


def export_tflm(model_bytes, target, out_dir, name, labels=None, golden_images=None,
                golden_count=1, kernels="reference", force=False, echo=print, detection=None):
    """Checks the model against `target` and writes <out_dir>/firmware/. Returns the summary
    that is also written as firmware/firmware.json. Raises TfuavError (UnsupportedOpError,
    FitError, ...) before anything is written if a check fails. detection: a
    tfuav.export.detection.Detection for a detector (one int8 output [1, H, W, C + 4])."""
    from tfuav.export.golden import golden_inputs
    from tfuav.targets import load_runtime
    from tfuav.validate import compare_outputs, run_reference, run_tflm

    if target.family != "cortex-m":
        raise TfuavError(f"the TFLM firmware folder is for Cortex-M targets; {target.name} is "
                         f"a {target.family} target")
    if kernels not in KERNELS:
        raise TfuavError(f"unknown kernels {kernels!r} (choose from: {', '.join(KERNELS)})")
    model_bytes = bytes(model_bytes)
    runtime = load_runtime(target.runtime)
    info = tflite_info(model_bytes)
    if len(info["inputs"]) != 1:
        raise TfuavError(f"the firmware harness feeds one input tensor; the model has "
                         f"{len(info['inputs'])}")
    if detection is not None:
        _check_detector_output(info, detection)
    labels = model_labels(info, labels, detection)
    assert_ops_supported(model_bytes, runtime, target.name)

    echo("  measuring the TFLM arena (recording allocator)")
    arena = arena_plan(model_bytes, runtime)
    io_bytes = sum(_tensor_bytes(t) for t in info["inputs"] + info["outputs"])
    fit = fit_check(len(model_bytes), info["ops"], arena["arena_bytes"], io_bytes, target,
                    runtime, kernels)
    if not fit.fits:
        if not force:
            raise FitError(fit.message())
        echo(f"  warning (--force): {fit.message()}")

    echo(f"  proving the {arena['arena_bytes']:,}-byte arena: TFLM runs the golden inputs")
    inputs = golden_inputs(model_bytes, golden_count, images_float=golden_images)
    outputs = run_tflm(model_bytes, inputs, arena_size=arena["arena_bytes"])
    agreement = compare_outputs(model_bytes, run_reference(model_bytes, inputs), outputs)
    if not agreement.passed:
        raise TfuavError(f"golden outputs: TFLM and the TFLite reference kernels disagree "
                         f"({agreement.summary()})")

    summary = {
        "model": name, "target": target.name, "chip": target.chip, "kernels": kernels,
        "model_bytes": len(model_bytes), "ops": sorted(set(info["ops"])), "arena": arena,
        "fit": fit.to_dict(),
        "golden": {"count": len(inputs), "tflm_vs_reference": agreement.to_dict()},
        "input": info["inputs"][0], "outputs": info["outputs"], "labels": labels,
    }
    boxes = None
    if detection is not None:
        boxes = [_golden_boxes(out, info["outputs"][0], detection) for out in outputs]
        summary["detection"] = dict(detection.to_dict(), grid=list(detection.grid(info)),
                                    golden_boxes=[len(b[1]) for b in boxes])
    files = _generated_sources(model_bytes, info, name, target, runtime, arena, labels,
                               inputs, outputs, detection, boxes)
    files["firmware.json"] = json.dumps(summary, indent=2, default=_plain) + "\n"
    files.update(_template_files(name, target, kernels, arena, len(model_bytes), detection))
    folder = Path(out_dir) / "firmware"
    write_folder(folder, files)
    summary["folder"] = str(folder)
    return summary


def _generated_sources(model_bytes, info, name, target, runtime, arena, labels, inputs,
                       outputs, detection=None, boxes=None):
    ident = c_identifier(name)
    files = {
        "model_data.h": _model_data_h(ident),
        "model_data.cc": _model_data_cc(ident, model_bytes),
        "model_ops.h": _model_ops_h(info["ops"], runtime),
        "model_config.h": _model_config_h(ident, name, target, arena, info["inputs"][0],
                                          info["outputs"], labels),
        "golden_data.h": _golden_data_h(len(inputs)),
        "golden_data.cc": _golden_data_cc(inputs, outputs),
    }
    if detection is not None:
        files["model_config.h"] = _with_detection_config(files["model_config.h"], info,
                                                         detection)
        files["golden_data.h"] = _with_golden_boxes_h(files["golden_data.h"])
        files["golden_data.cc"] += _golden_boxes_cc(boxes)
    return files


def _template_files(name, target, kernels, arena, model_size, detection=None):
    """firmware_export/tflm/ (*.in rendered) and the platform files the target needs; for a
    detector also the decoder from firmware_export/detect/."""
    values = {
        "MODEL": name, "TARGET": target.name, "CHIP": target.chip,
        "CPU_FLAGS": " ".join(target.cpu_flags), "TFLM_ARCH": target.tflm_arch,
        "LINKER_SCRIPT": f"{target.linker_script}.ld", "QEMU_MACHINE": target.qemu_machine,
        "QEMU_LINKER_SCRIPT": f"{target.qemu_linker_script}.ld",
        "CMSIS_NN": "1" if kernels == "cmsis-nn" else "0", "CLOCK_MHZ": str(target.clock_mhz),
        "ARENA_BYTES": f"{arena['arena_bytes']:,}", "MODEL_BYTES": f"{model_size:,}",
    }
    values.update(_detection_values(values, detection))
    files = {}
    for template in sorted(TEMPLATE_DIR.iterdir()):
        if template.is_file():
            text = render(template, values) if template.suffix == ".in" else template.read_text()
            files[template.name.removesuffix(".in")] = text
    for source in PLATFORM_SOURCES + (values["LINKER_SCRIPT"], values["QEMU_LINKER_SCRIPT"]):
        path = PLATFORM_DIR / source
        if not path.is_file():
            raise TfuavError(f"target {target.name}: no platform file {path}")
        files[source] = path.read_text()
    if detection is not None:
        files.update({source: (DETECT_DIR / source).read_text() for source in DETECT_SOURCES})
    return files


# --- detectors ----------------------------------------------------------------------------

# What the harness and build files gain for a detector; classifiers get empty strings, so
# their files stay exactly what they were.
_DETECT_INCLUDE = '#include "detect_golden.h"\n'
_DETECT_CHECK = ("    // the boxes decoded on the target must be the golden boxes too\n"
                 "    if (tfuav_detect_check_golden(g, interpreter->output(0)->data.int8) != 0 &&\n"
                 "        mismatches == 0) {\n"
                 "      ++failures;\n"
                 "    }\n")


def _detection_values(values, detection):
    keys = ("DETECT_INCLUDE", "DETECT_CHECK", "DETECT_SOURCES", "DETECT_README_FILES",
            "DETECT_README_RESULTS")
    if detection is None:
        return dict.fromkeys(keys, "")
    readme = dict(values, DETECT_CLASSES=str(detection.num_classes),
                  DETECT_STRIDE=str(detection.stride), DETECT_TOP_K=str(detection.top_k),
                  DETECT_THRESHOLD=f"{detection.score_threshold:g}")
    return {"DETECT_INCLUDE": _DETECT_INCLUDE, "DETECT_CHECK": _DETECT_CHECK,
            "DETECT_SOURCES": " " + " ".join(s for s in DETECT_SOURCES if s.endswith(".c")),
            "DETECT_README_FILES": render(DETECT_DIR / "README.files.md.in", readme),
            "DETECT_README_RESULTS": render(DETECT_DIR / "README.results.md.in", readme)}


def _check_detector_output(info, detection):
    detection.grid(info)
    out = info["outputs"][0]
    if out["dtype"] != "int8":
        raise TfuavError(f"the firmware's detection decoder reads an int8 output; the model's "
                         f"output is {out['dtype']}")
    if not out["scale"] or out["scale"] <= 0:
        raise TfuavError(f"detector output {out['name']!r} has no positive int8 scale "
                         f"({out['scale']})")


def _golden_boxes(output, spec, detection):
    """(boxes, scores, classes) of one golden output by tfuav's numpy decoder."""
    from tfuav.runtime.detect import decode_head_int8
    return decode_head_int8(np.asarray(output), spec["scale"], spec["zero_point"],
                            detection.num_classes, detection.stride, top_k=detection.top_k,
                            score_threshold=detection.score_threshold)


def _with_detection_config(config_h, info, detection):
    block = detection.c_defines(info)
    anchor = "#ifndef MODEL_BENCH_RUNS\n"
    return config_h.replace(anchor, block + anchor, 1)


def _with_golden_boxes_h(golden_h):
    block = ("#include \"tfuav_detect.h\"\n\n"
             "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
             "// The boxes tfuav's numpy decoder found in each golden output, best first.\n"
             "extern const int g_golden_box_count[GOLDEN_COUNT];\n"
             "extern const tfuav_detect_box g_golden_boxes[GOLDEN_COUNT][MODEL_DETECT_TOP_K];\n"
             "#ifdef __cplusplus\n}\n#endif\n\n")
    anchor = "#endif  // TFUAV_GOLDEN_DATA_H_\n"
    return golden_h.replace(anchor, block + anchor, 1)


def _golden_boxes_cc(boxes):
    counts = ", ".join(str(len(classes)) for _, _, classes in boxes)
    rows = []
    for xywh, scores, classes in boxes:
        entries = [f"    {{{', '.join(c_float(v) for v in box)}, {c_float(score)}, {int(c)}}}"
                   for box, score, c in zip(xywh, scores, classes)]
        rows.append("  {\n" + ",\n".join(entries) + "\n  }" if entries else "  {}")
    return ("\n// {x, y, w, h, score, class_id} in input pixels\n"
            f"const int g_golden_box_count[GOLDEN_COUNT] = {{{counts}}};\n"
            "const tfuav_detect_box g_golden_boxes[GOLDEN_COUNT][MODEL_DETECT_TOP_K] = {\n"
            + ",\n".join(rows) + "\n};\n")


def _tensor_bytes(spec):
    return int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)


# --- generated sources ------------------------------------------------------------------

_HEADER = "// Generated by tfuav. Do not edit: re-run `tfuav export` instead.\n"


def _model_data_h(ident):
    guard = f"TFUAV_{ident.upper()}_MODEL_DATA_H_"
    return (f"{_HEADER}#ifndef {guard}\n#define {guard}\n\n"
            f"extern const unsigned char g_{ident}_model_data[];\n"
            f"extern const unsigned int g_{ident}_model_data_size;\n\n#endif  // {guard}\n")


def _model_data_cc(ident, model_bytes):
    return (f"{_HEADER}#include \"model_data.h\"\n\n"
            f"// The exact .tflite flatbuffer, 16-byte aligned as TFLM requires.\n"
            f"alignas(16) const unsigned char g_{ident}_model_data[] = {{\n"
            f"{byte_lines(model_bytes)}\n}};\n"
            f"const unsigned int g_{ident}_model_data_size = {len(model_bytes)};\n")


def _model_ops_h(ops, runtime):
    used = sorted(set(ops))
    calls = "\n".join(f"  if (resolver.{runtime.ops[op]['call']}() != kTfLiteOk) return kTfLiteError;"
                      for op in used)
    return (f"{_HEADER}#ifndef TFUAV_MODEL_OPS_H_\n#define TFUAV_MODEL_OPS_H_\n\n"
            "#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"\n\n"
            f"// The {len(used)} ops the model uses ({', '.join(used)}), each registered once.\n"
            f"constexpr int kModelOpCount = {len(used)};\n"
            "using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;\n\n"
            "inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {\n"
            f"{calls}\n  return kTfLiteOk;\n}}\n\n#endif  // TFUAV_MODEL_OPS_H_\n")


def _c_dims(name, shape):
    dims = ", ".join(str(int(d)) for d in shape)
    return f"static const int {name}[{max(len(shape), 1)}] = {{{dims or 0}}};\n"


def _quant_lines(prefix, spec):
    scale = spec["scale"] if spec["scale"] is not None else 0.0
    zp = spec["zero_point"] if spec["zero_point"] is not None else 0
    return (f"#define {prefix}_TYPE {c_string(spec['dtype'])}\n"
            f"#define {prefix}_SCALE {scale:.9g}f\n"
            f"#define {prefix}_ZERO_POINT {zp}\n")


def _model_config_h(ident, name, target, arena, in_spec, outputs, labels):
    out_bytes = sum(_tensor_bytes(o) for o in outputs)
    label_list = ", ".join(c_string(label) for label in labels)
    text = [_HEADER, "#ifndef TFUAV_MODEL_CONFIG_H_\n#define TFUAV_MODEL_CONFIG_H_\n\n",
            f"#define MODEL_NAME {c_string(name)}\n",
            f"#define MODEL_TARGET {c_string(target.name)}\n",
            f"#define MODEL_DATA g_{ident}_model_data\n",
            f"#define MODEL_DATA_SIZE g_{ident}_model_data_size\n",
            f"#define MODEL_CLOCK_MHZ {int(target.clock_mhz)}\n\n",
            f"// Tensor arena: {arena['recorded_bytes']} bytes measured by TFLM's recording\n"
            f"// allocator on the host for these exact model bytes, + {arena['margin_bytes']}"
            f" bytes fixed margin\n// + {arena['cmsis_nn_scratch_bytes']} bytes for the largest "
            "CMSIS-NN scratch buffer, rounded up to 16.\n",
            f"#define MODEL_ARENA_BYTES {arena['arena_bytes']}\n",
            f"#define MODEL_ARENA_MEASURED_BYTES {arena['recorded_bytes']}\n\n",
            f"#define MODEL_INPUT_BYTES {_tensor_bytes(in_spec)}\n",
            f"#define MODEL_INPUT_DIMS {len(in_spec['shape'])}\n",
            _c_dims("kModelInputDims", in_spec["shape"]),
            _quant_lines("MODEL_INPUT", in_spec), "\n",
            f"// {len(outputs)} output tensor(s); golden outputs are their bytes concatenated.\n",
            f"#define MODEL_OUTPUT_COUNT {len(outputs)}\n",
            f"#define MODEL_OUTPUT_BYTES {out_bytes}\n",
            f"#define MODEL_OUTPUT_DIMS {len(outputs[0]['shape'])}\n",
            _c_dims("kModelOutputDims", outputs[0]["shape"]),
            _quant_lines("MODEL_OUTPUT", outputs[0]), "\n",
            f"#define MODEL_LABEL_COUNT {len(labels)}\n",
            f"static const char *const kModelLabels[{max(len(labels), 1)}] = {{{label_list}}};\n\n",
            "#ifndef MODEL_BENCH_RUNS\n",
            f"#define MODEL_BENCH_RUNS {DEFAULT_BENCH_RUNS}\n#endif\n\n",
            "#endif  // TFUAV_MODEL_CONFIG_H_\n"]
    return "".join(text)


def _golden_data_h(count):
    return (f"{_HEADER}#ifndef TFUAV_GOLDEN_DATA_H_\n#define TFUAV_GOLDEN_DATA_H_\n\n"
            "#include \"model_config.h\"\n\n"
            "// Real inputs and the output bytes TFLM produced for them on the host.\n"
            f"#define GOLDEN_COUNT {count}\n"
            "extern const unsigned char g_golden_input[GOLDEN_COUNT][MODEL_INPUT_BYTES];\n"
            "extern const unsigned char g_golden_output[GOLDEN_COUNT][MODEL_OUTPUT_BYTES];\n\n"
            "#endif  // TFUAV_GOLDEN_DATA_H_\n")


def _golden_data_cc(inputs, outputs):
    def table(name, arrays, size):
        rows = ",\n".join("  {\n" + byte_lines(np.ascontiguousarray(a).tobytes()) + "\n  }"
                          for a in arrays)
        return (f"alignas(16) const unsigned char {name}[GOLDEN_COUNT][{size}] = {{\n"
                f"{rows}\n}};\n")
    return (f"{_HEADER}#include \"golden_data.h\"\n\n"
            + table("g_golden_input", inputs, "MODEL_INPUT_BYTES") + "\n"
            + table("g_golden_output", outputs, "MODEL_OUTPUT_BYTES"))
