"""Model bytes -> C sources: read the flatbuffer, lower every op to kernel calls, plan the
scratch memory, render the model's .h/.c plus the glue header the harnesses include."""
from dataclasses import dataclass, replace
from pathlib import Path

from tfuav.export.csource import c_identifier, c_string
from tfuav.export.native.codegen import HEADER, ModelSource
from tfuav.export.native.fold import fold_constants
from tfuav.export.native.graph import read_graph
from tfuav.export.native.lower import NativeOptions, lower_graph
from tfuav.export.native.planner import plan_memory
from tfuav.export.native.probe import reference_arithmetic
from tfuav.export.native.program import NativeExportError
from tfuav.export.native.rewrite import fuse_pads

KERNEL_DIR = Path(__file__).resolve().parents[3] / "firmware_export" / "native"
KERNEL_SOURCES = ("tfuav_nn_conv.c", "tfuav_nn_eltwise.c", "tfuav_nn_reduce.c",
                  "tfuav_nn_move.c")
KERNEL_HEADERS = ("tfuav_nn.h",)
RESERVED = {"main", "host_main", "golden", "native_model", "port", "port_semihosting",
            "port_uart_template", "cycles", "startup_cortex_m"}


@dataclass
class CompiledModel:
    ident: str
    graph: object
    steps: list
    plan: object
    files: dict   # relative path -> text
    folded: list  # ops evaluated at generation time or folded into another ("index:NAME")
    constant_bytes: int = 0  # flash of the constant arrays (identical arrays stored once)

    @property
    def scratch_bytes(self):
        return max(self.plan.peak_bytes, 8)

    def ops(self):
        return [s.op.name for s in self.steps]


def compile_model(model_bytes, name, options=NativeOptions(), arithmetic=None):
    """CompiledModel for the .tflite bytes; raises NativeExportError for what it cannot compile.
    arithmetic: what the reference kernels compute where TFLite builds differ (default: probe
    the installed ones, see probe.py)."""
    arithmetic = arithmetic or reference_arithmetic()
    if arithmetic["rounding"] != "double":
        raise NativeExportError("native engine: the installed TFLite reference kernels round "
                                "MultiplyByQuantizedMultiplier once (TFLITE_SINGLE_ROUNDING); "
                                "the kernels implement TFLite's default double rounding")
    options = replace(options, fc_requant=arithmetic["fc_requant"])
    ident = c_identifier(name)
    if ident in RESERVED or ident.startswith("tfuav_"):
        ident += "_model"  # keep clear of the harness, platform and kernel file names
    graph = read_graph(model_bytes)
    folded = fold_constants(graph) + fuse_pads(graph)
    steps = lower_graph(graph, options)
    plan = plan_memory(graph, steps)
    src = ModelSource(ident, graph, steps, plan)
    files = {f"{ident}.h": src.header(), f"{ident}.c": src.source(),
             "native_model.h": _glue(ident, name)}
    for f in KERNEL_HEADERS + KERNEL_SOURCES:
        files[f] = (KERNEL_DIR / f).read_text()
    return CompiledModel(ident=ident, graph=graph, steps=steps, plan=plan, files=files,
                         folded=[f"{op.index}:{op.name}" for op in folded],
                         constant_bytes=src.constant_bytes())


def _glue(ident, name):
    up = ident.upper()
    return (f"{HEADER}#ifndef TFUAV_NATIVE_GLUE_H\n#define TFUAV_NATIVE_GLUE_H\n\n"
            f"/* The compiled model under generic names, for host_main.c and main.c. */\n"
            f"#include \"{ident}.h\"\n#include \"tfuav_nn.h\"\n\n"
            f"#define NATIVE_MODEL_NAME {c_string(name)}\n"
            f"#define NATIVE_INVOKE {ident}_invoke\n"
            f"#define NATIVE_INPUT_BYTES {up}_INPUT_BYTES\n"
            f"#define NATIVE_OUTPUT_BYTES {up}_OUTPUT_BYTES\n"
            f"#define NATIVE_SCRATCH_BYTES {up}_SCRATCH_BYTES\n\n"
            "#endif /* TFUAV_NATIVE_GLUE_H */\n")
