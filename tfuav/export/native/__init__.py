"""The native engine: an int8 .tflite compiled ahead of time to plain C99 (weights as const
arrays, one `<name>_invoke` function, one statically planned scratch buffer), computing the
same bytes as the TFLite reference kernels.

export_native() is the export stage's entry point, like export_tflm()."""
import json
import tempfile
from pathlib import Path

import numpy as np

from tfuav.errors import TfuavError
from tfuav.export import model_labels
from tfuav.export.csource import byte_lines
from tfuav.export.fit import FitError, FitResult
from tfuav.export.folder import render, write_folder
from tfuav.export.native.build import HARNESS_DIR, PLATFORM_DIR, build_host, host_compiler, run_host
from tfuav.export.native.compiler import CompiledModel, compile_model
from tfuav.export.native.lower import SUPPORTED_OPS, NativeOptions
from tfuav.export.native.program import NativeExportError

__all__ = ["CompiledModel", "NativeExportError", "NativeOptions", "SUPPORTED_OPS",
           "compile_model", "export_native"]

HARNESS_FILES = ("main.c", "host_main.c", "README.md")
# Flash and stack the fit check assumes besides the constants: the kernels a model links
# measured 9-18 KB at -O2 (--gc-sections) plus about 100 bytes per op call; stack 0.5 KB
CODE_BYTES_BASE = 20 * 1024
CODE_BYTES_PER_OP = 128
STACK_BYTES = 1024
PLATFORM_FILES = ("startup_cortex_m.c", "port.h", "port_semihosting.c", "port_uart_template.c",
                  "cycles.c")


def export_native(tflite_bytes, target, out_dir, name, golden_images=None, golden_count=1,
                  labels=None, cache_bytes=16384, verify="auto", force=False, echo=print,
                  detection=None):
    """Compile the model for `target` (a Target or a target name) into <out_dir>/native/ and
    return the summary (also written as native/native.json).

    golden_images: preprocessed float images for the self-check vectors (synthetic scenes
    without them). cache_bytes: the data cache / fast SRAM the weight and row tiles are sized
    for. verify: "auto" compiles the package with the host C compiler, if there is one, and
    requires its outputs on the golden inputs to equal the TFLite reference kernels'
    ("always": a compiler is required, "never": skip). force: package a model that exceeds the
    board's flash or RAM budget (with a warning). Raises TfuavError (NativeExportError naming
    the op for an unsupported op, FitError) before anything is written.
    detection: a tfuav.export.detection.Detection; the package then also carries the box
    decoder (tfuav_detect.c/.h) and its parameters (detect_config.h)."""
    from tfuav.export.golden import golden_inputs
    from tfuav.targets import load_target
    from tfuav.validate import run_reference

    if isinstance(target, str):
        target = load_target(target)
    if target.family != "cortex-m":
        raise TfuavError(f"the native engine package is for Cortex-M targets; {target.name} is "
                         f"a {target.family} target")
    if verify not in ("auto", "always", "never"):
        raise TfuavError(f"verify must be auto, always or never (got {verify!r})")
    model_bytes = bytes(tflite_bytes)
    echo("  compiling the model to C (native engine)")
    compiled = compile_model(model_bytes, name, NativeOptions(cache_bytes=cache_bytes))
    if len(compiled.graph.inputs) != 1:
        raise TfuavError(f"the native harness feeds one input tensor; the model has "
                         f"{len(compiled.graph.inputs)}")
    fit = _fit(compiled, target)
    if not fit.fits:
        if not force:
            raise FitError(fit.message())
        echo(f"  warning (--force): {fit.message()}")
    inputs = golden_inputs(model_bytes, golden_count, images_float=golden_images)
    expected = [np.asarray(o).astype(np.int8) for o in run_reference(model_bytes, inputs)]
    check = _host_check(compiled, inputs, expected, verify, echo)

    plan = compiled.plan.to_dict(compiled.graph)
    summary = {
        "model": name, "target": target.name, "chip": target.chip, "engine": "native",
        "entry_point": f"{compiled.ident}_invoke", "source": f"{compiled.ident}.c",
        "model_bytes": len(model_bytes), "ops": sorted(set(compiled.ops())),
        "op_count": len(compiled.steps), "folded_ops": compiled.folded,
        "scratch_bytes": compiled.scratch_bytes,
        "input_bytes": sum(compiled.graph.tensors[t].nbytes for t in compiled.graph.inputs),
        "output_bytes": sum(compiled.graph.tensors[t].nbytes for t in compiled.graph.outputs),
        "constant_bytes": compiled.constant_bytes, "cache_bytes": cache_bytes,
        "fit": fit.to_dict(), "labels": _labels(compiled, labels, detection),
        "golden": {"count": len(inputs), "host_check": check},
        "memory_plan": plan,
    }
    files = dict(compiled.files)
    files.update(_golden_files(inputs, expected))
    files.update(_support_files(compiled, name, target))
    if detection is not None:
        summary["detection"] = detection.to_dict()
        files.update(_detector_files(model_bytes, detection))
    files["native.json"] = json.dumps(summary, indent=2, default=_plain) + "\n"
    folder = Path(out_dir) / "native"
    write_folder(folder, files)
    summary["folder"] = str(folder)
    return summary


def _host_check(compiled, inputs, expected, verify, echo):
    cc = host_compiler()
    if verify == "never" or (verify == "auto" and cc is None):
        return {"compiler": cc, "checked": False}
    if cc is None:
        raise TfuavError("verify='always' needs a host C compiler (cc, gcc or clang)")
    echo(f"  checking the generated C on the host ({cc}) against the TFLite reference kernels")
    with tempfile.TemporaryDirectory(prefix="tfuav_native_") as tmp:
        work = Path(tmp)
        for rel, text in compiled.files.items():
            (work / rel).write_text(text)
        (work / "host_main.c").write_text((HARNESS_DIR / "host_main.c").read_text())
        exe = build_host(work, work / "model_host", cc=cc)
        outputs = run_host(exe, [np.ascontiguousarray(x).tobytes() for x in inputs])
    for i, (got, want) in enumerate(zip(outputs, expected)):
        if got != want.tobytes():
            diff = np.frombuffer(got, np.int8).astype(int) - want.reshape(-1).astype(int)
            raise TfuavError(f"native engine: golden input {i}: the generated C and the TFLite "
                             f"reference kernels disagree on {int(np.count_nonzero(diff))} of "
                             f"{diff.size} output bytes")
    return {"compiler": cc, "checked": True, "inputs": len(inputs), "bit_exact": True}


def _fit(compiled, target):
    g = compiled.graph
    io = sum(g.tensors[t].nbytes for t in g.inputs + g.outputs)
    code = CODE_BYTES_BASE + CODE_BYTES_PER_OP * len(compiled.steps)
    return FitResult(target=target.name, kernels="native", model_bytes=compiled.constant_bytes,
                     code_bytes=code, flash_bytes=compiled.constant_bytes + code,
                     flash_budget=target.flash_budget, arena_bytes=compiled.scratch_bytes,
                     io_bytes=io, stack_bytes=STACK_BYTES,
                     ram_bytes=compiled.scratch_bytes + io + STACK_BYTES,
                     ram_budget=target.ram_budget, arena_region_bytes=target.arena_region_bytes)


def _labels(compiled, labels, detection=None):
    t = compiled.graph.tensors[compiled.graph.outputs[0]]
    return model_labels({"outputs": [{"shape": list(t.shape)}]}, labels, detection)


def _golden_files(inputs, expected):
    def table(name, arrays, size):
        rows = ",\n".join("  {\n" + byte_lines(np.ascontiguousarray(a).tobytes()) + "\n  }"
                          for a in arrays)
        return f"const unsigned char {name}[GOLDEN_COUNT][{size}] TFUAV_ALIGNED(8) = {{\n{rows}\n}};\n"
    head = "/* Generated by tfuav (native engine). Do not edit: re-run the export instead. */\n"
    h = (f"{head}#ifndef TFUAV_NATIVE_GOLDEN_H\n#define TFUAV_NATIVE_GOLDEN_H\n\n"
         "#include \"native_model.h\"\n\n"
         "/* Inputs and the outputs the TFLite reference kernels computed for them. */\n"
         f"#define GOLDEN_COUNT {len(inputs)}\n"
         "extern const unsigned char g_golden_input[GOLDEN_COUNT][NATIVE_INPUT_BYTES];\n"
         "extern const unsigned char g_golden_output[GOLDEN_COUNT][NATIVE_OUTPUT_BYTES];\n\n"
         "#endif /* TFUAV_NATIVE_GOLDEN_H */\n")
    c = (f"{head}#include \"golden.h\"\n\n"
         + table("g_golden_input", inputs, "NATIVE_INPUT_BYTES") + "\n"
         + table("g_golden_output", expected, "NATIVE_OUTPUT_BYTES"))
    return {"golden.h": h, "golden.c": c}


def _support_files(compiled, name, target):
    files = {f: (HARNESS_DIR / f).read_text() for f in HARNESS_FILES}
    for f in PLATFORM_FILES + (f"{target.qemu_linker_script}.ld", f"{target.linker_script}.ld"):
        path = PLATFORM_DIR / f
        if not path.is_file():
            raise TfuavError(f"target {target.name}: no platform file {path}")
        files[f] = path.read_text()
    values = {"MODEL": name, "TARGET": target.name, "CPU_FLAGS": " ".join(target.cpu_flags),
              "QEMU_MACHINE": target.qemu_machine,
              "QEMU_LINKER_SCRIPT": f"{target.qemu_linker_script}.ld",
              "MODEL_C": f"{compiled.ident}.c", "IDENT": compiled.ident,
              "UPPER": compiled.ident.upper(), "SCRATCH_BYTES": str(compiled.scratch_bytes)}
    files["Makefile"] = render(HARNESS_DIR / "Makefile.in", values)
    return files


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _detector_files(model_bytes, detection):
    """The TFLM folder's box decoder and its MODEL_DETECT_* parameters."""
    from tfuav.convert.inspect_tflite import tflite_info
    from tfuav.export.tflm import DETECT_DIR
    guard = "TFUAV_DETECT_CONFIG_H_"
    files = {source: (DETECT_DIR / source).read_text()
             for source in ("tfuav_detect.h", "tfuav_detect.c")}
    files["detect_config.h"] = (f"#ifndef {guard}\n#define {guard}\n\n"
                                + detection.c_defines(tflite_info(model_bytes))
                                + f"#endif  // {guard}\n")
    return files
