"""Shared by the native-engine tests (no tests of its own): the builder for small int8 .tflite
flatbuffers, the TFLite reference interpreter, and helpers that compile a generated package
with host gcc and run it."""
import subprocess
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import interpreter as litert
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tfuav.export.native.tflite_builder import ModelBuilder, options  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]
VWW = REPO.parent / "shared" / "fixtures" / "mlperf_tiny_vww" / "vww_96_int8.tflite"
HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def reference_outputs(model_bytes, inputs):
    """Outputs of the TFLite reference kernels (BUILTIN_REF) for a list of input arrays
    (one per model input); returns the list of output arrays."""
    interp = litert.Interpreter(model_content=bytes(model_bytes),
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    for detail, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], np.asarray(x, dtype=detail["dtype"]))
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def random_int8(shape, rng):
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def run_command(cmd, timeout=300, text=True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=text, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stderr!r:.4000}"
    return proc


# --- compiling generated models on the host ------------------------------------------------

def build_kernel_archive(workdir):
    """libtfuav_nn.a of the kernel library, compiled once with all warnings as errors."""
    from tfuav.export.native.compiler import KERNEL_DIR, KERNEL_SOURCES
    workdir = Path(workdir)
    objects = []
    for src in KERNEL_SOURCES:
        obj = workdir / (Path(src).stem + ".o")
        run_command(["gcc", *HOST_CFLAGS, "-c", str(KERNEL_DIR / src), "-o", str(obj)])
        objects.append(str(obj))
    archive = workdir / "libtfuav_nn.a"
    run_command(["ar", "rcs", str(archive), *objects])
    return archive


def host_executable(compiled, workdir, archive):
    """The compiled model + host_main.c linked with the kernel archive."""
    from tfuav.export.native.build import HARNESS_DIR
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for rel, text in compiled.files.items():
        (workdir / rel).write_text(text)
    exe = workdir / "model_host"
    run_command(["gcc", *HOST_CFLAGS, f"-I{workdir}", str(workdir / f"{compiled.ident}.c"),
                 str(HARNESS_DIR / "host_main.c"), str(archive), "-o", str(exe)])
    return exe


def run_executable(exe, input_rows):
    """input_rows: list of lists of arrays (one list of model inputs per inference); returns
    one flat int8 array per inference."""
    data = b"".join(b"".join(np.ascontiguousarray(a).tobytes() for a in row)
                    for row in input_rows)
    out = subprocess.run([str(exe)], input=data, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    flat = np.frombuffer(out.stdout, dtype=np.int8)
    return list(flat.reshape(len(input_rows), -1))


def expose_all_tensors(model_bytes):
    """The same model with every int8 op output (except pure views of another tensor) added
    to the subgraph outputs, so both runtimes report every intermediate tensor."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    sg = model.subgraphs[0]
    views = {getattr(schema.BuiltinOperator, n) for n in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")}
    outputs = [int(t) for t in sg.outputs]
    view_source = {}
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) in views:
            view_source[int(op.outputs[0])] = int(op.inputs[0])
    taken = set(outputs)
    for t in outputs:  # the bytes behind an original output are reported by it already
        while t in view_source:
            t = view_source[t]
            taken.add(t)
    for op in sg.operators:
        for t in op.outputs:
            if (int(t) not in taken and int(t) not in view_source and t not in sg.inputs
                    and sg.tensors[t].type == schema.TensorType.INT8):
                outputs.append(int(t))
                taken.add(int(t))
    sg.outputs = outputs
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
