#!/usr/bin/env python3
"""Benchmark of the native engine (int8 TFLite compiled to C) against TFLite Micro: one table.

For each model (the zoo at 64x64 with random weights -- glimmernet, takunet and uavlite where
registered -- and the MLPerf Tiny VWW fixture, or the .tflite files given):
  flash       weights + parameters (the model's .rodata) and runtime code (kernels + invoke)
              as the linker kept them (-O2, --gc-sections; from the map file)
  RAM         scratch buffer + stack measured on the target; TFLM's arena (recording
              allocator on the host) for comparison; caller-owned input/output listed apart
  latency     the generated C on this machine (gcc -O2) vs the TFLM Python interpreter
  instructions per inference on QEMU mps2-an500 (Cortex-M7) with -icount shift=0, read from
              the CMSDK timer (1 tick = 40 instructions): plain C and TFUAV_USE_DSP builds,
              plus Cortex-M4 (mps2-an386); all outputs checked against the TFLite reference
  TFLM        with --tflm-dir (a tflite-micro checkout whose gen/ holds the libraries built for
              cortex_m_generic: cortex-m7+fp release, with and without cmsis_nn), TFLM's
              instructions per Invoke measured the same way; without it the VWW figures
              measured that way before are shown (101.2M reference, 24.0M CMSIS-NN)

    python tools/bench_native.py [--tflm-dir ~/tflite-micro] [--cpu cortex-m7] [MODEL.tflite ...]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench_tflm_qemu import zoo_model  # noqa: E402  (same random-weight zoo models)
VWW = REPO.parent / "shared" / "fixtures" / "mlperf_tiny_vww" / "vww_96_int8.tflite"
ZOO = ("glimmernet", "takunet", "uavlite")
# TFLM instructions per Invoke for VWW measured with the same QEMU method (reference kernels,
# CMSIS-NN); used when no TFLM build is given.
TFLM_VWW_KNOWN = {"reference": 101_200_000, "cmsis-nn": 24_000_000}
TFLM_GEN = {"reference": "gen/cortex_m_generic_cortex-m7+fp_release_gcc",
            "cmsis-nn": "gen/cortex_m_generic_cortex-m7+fp_release_cmsis_nn_gcc"}

TFLM_HARNESS = r'''
// Times one TFLM Invoke with the MPS2 CMSDK timer under QEMU -icount shift=0.
#include <stdint.h>
#include <stdio.h>
#include <new>
#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
#include "port.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#define TIMER_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER_RELOAD (*(volatile uint32_t *)0x40000008u)
alignas(16) static uint8_t g_arena[MODEL_ARENA_BYTES] __attribute__((section(".arena")));
alignas(ModelOpResolver) static uint8_t g_res[sizeof(ModelOpResolver)];
alignas(tflite::MicroInterpreter) static uint8_t g_int[sizeof(tflite::MicroInterpreter)];
int main() {
  char line[96];
  tfuav_port_init();
  ModelOpResolver* resolver = new (g_res) ModelOpResolver();
  if (RegisterModelOps(*resolver) != kTfLiteOk) return 2;
  tflite::MicroInterpreter* interp = new (g_int) tflite::MicroInterpreter(
      tflite::GetModel(MODEL_DATA), *resolver, g_arena, MODEL_ARENA_BYTES);
  if (interp->AllocateTensors() != kTfLiteOk) return 3;
  if (interp->Invoke() != kTfLiteOk) return 4;
  TIMER_CTRL = 0u; TIMER_RELOAD = 0xFFFFFFFFu; TIMER_VALUE = 0xFFFFFFFFu; TIMER_CTRL = 1u;
  const uint32_t before = TIMER_VALUE;
  if (interp->Invoke() != kTfLiteOk) return 5;
  const uint32_t after = TIMER_VALUE;
  snprintf(line, sizeof(line), "instructions %lu\n", (unsigned long)((before - after) * 40u));
  tfuav_port_write(line);
  return 0;
}
'''

TFLM_PY_TIMING = r'''
import sys, time, numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
interp = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
d = interp.get_input_details(0)
interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
interp.invoke()
runs = int(sys.argv[3])
start = time.perf_counter()
for _ in range(runs):
    interp.invoke()
print((time.perf_counter() - start) / runs * 1e6)
'''


def run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode:
        raise RuntimeError(f"failed: {' '.join(map(str, cmd[:4]))} ...\n{proc.stderr[-3000:]}")
    return proc


def native_numbers(name, model_bytes, cpu, work):
    """Export, host latency, QEMU instructions (plain, DSP, M4), flash split, stack."""
    import numpy as np

    from tfuav.export.native import export_native
    from tfuav.export.native.build import (build_host, build_qemu, flash_by_object,
                                           host_latency_ns, run_qemu)
    summary = export_native(model_bytes, cpu, work / name, name, golden_count=2,
                            echo=lambda *_: None)
    folder = Path(summary["folder"])
    row = {"model": name, "ops": len(summary["ops"]), "op_count": summary["op_count"],
           "scratch": summary["scratch_bytes"],
           "io": summary["input_bytes"] + summary["output_bytes"]}
    exe = build_host(folder, work / name / "host", opt="-O2")
    x = np.zeros(summary["input_bytes"], np.int8).tobytes()
    row["host_us"] = min(host_latency_ns(exe, x, runs=20) for _ in range(3)) / 1e3
    for key, target, dsp in (("m7", cpu, False), ("m7_dsp", cpu, True),
                             ("m4", "cortex-m4", False)):
        elf = work / name / f"{key}.elf"
        mapf = work / name / f"{key}.map"
        build_qemu(folder, elf, cpu=target, dsp=dsp, map_file=mapf)
        report = run_qemu(elf, target)
        if not report["passed"]:
            raise RuntimeError(f"{name} {key}: the harness failed:\n{report['text'][-1500:]}")
        row[key] = report["instructions"]
        if key == "m7":
            row["stack"] = report["stack"]
            objects = flash_by_object(mapf)
            model_obj = objects[Path(summary["source"]).stem + ".o"]
            row["weights"] = model_obj["rodata"]
            row["code"] = model_obj["text"] + sum(v["text"] for k, v in objects.items()
                                                  if k.startswith("tfuav_nn"))
            row["text"] = int(run(["arm-none-eabi-size", elf]).stdout.splitlines()[1].split()[0])
    return row


def tflm_arena_and_latency(model_bytes, work):
    from tfuav.validate import recorded_arena_size
    arena = recorded_arena_size(model_bytes)
    path = work / "model.tflite"
    path.write_bytes(model_bytes)
    us = float(run([sys.executable, "-c", TFLM_PY_TIMING, path, str(arena + 16384), 20],
                   timeout=600).stdout.strip())
    return arena, us


def tflm_instructions(name, model_bytes, cpu, tflm_dir, work):
    """TFLM instructions per Invoke (reference, CMSIS-NN) with the prebuilt libraries."""
    from tfuav.export.native.build import CPU_FLAGS, PLATFORM_DIR, QEMU
    from tfuav.export.tflm import export_tflm
    from tfuav.targets import load_target
    out = work / f"tflm_{name}"
    export_tflm(model_bytes, load_target(cpu), out, name=name, echo=lambda *_: None, force=True)
    folder = out / "firmware"
    (folder / "bench.cc").write_text(TFLM_HARNESS)
    dl = tflm_dir / "tensorflow/lite/micro/tools/make/downloads"
    machine, ldscript = QEMU[cpu]
    result = {}
    for kernels, gen in TFLM_GEN.items():
        lib = tflm_dir / gen / "lib" / "libtensorflow-microlite.a"
        if not lib.is_file():
            continue
        defs = ["-DTF_LITE_STATIC_MEMORY", "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS"]
        if kernels == "cmsis-nn":
            defs.append("-DCMSIS_NN")
        inc = [f"-I{folder}", f"-I{PLATFORM_DIR}", f"-I{tflm_dir}",
               f"-I{dl / 'flatbuffers/include'}", f"-I{dl / 'gemmlowp'}", f"-I{dl / 'ruy'}"]
        objs = []
        for src in ("bench.cc", "model_data.cc"):
            obj = folder / f"{Path(src).stem}_{kernels}.o"
            run(["arm-none-eabi-g++", *CPU_FLAGS[cpu], "-std=c++17", "-O2", "-fno-rtti",
                 "-fno-exceptions", "-fno-threadsafe-statics", "-ffunction-sections",
                 "-fdata-sections", *defs, *inc, "-c", folder / src, "-o", obj])
            objs.append(obj)
        for src in ("startup_cortex_m.c", "port_semihosting.c", "cycles.c"):
            obj = folder / f"{Path(src).stem}_{kernels}.o"
            run(["arm-none-eabi-gcc", *CPU_FLAGS[cpu], "-std=c99", "-O2", f"-I{PLATFORM_DIR}",
                 "-c", PLATFORM_DIR / src, "-o", obj])
            objs.append(obj)
        elf = folder / f"bench_{kernels}.elf"
        run(["arm-none-eabi-g++", *CPU_FLAGS[cpu], "-nostartfiles", "--specs=nano.specs",
             "--specs=rdimon.specs", "-Wl,--gc-sections", f"-T{PLATFORM_DIR / ldscript}", *objs,
             lib, "-lm", "-o", elf])
        proc = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-semihosting",
                               "-icount", "shift=0", "-kernel", str(elf)], capture_output=True,
                              text=True, timeout=1200)
        for line in proc.stdout.splitlines():
            if line.startswith("instructions "):
                result[kernels] = int(line.split()[1])
    return result


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    return f"{v:,}{unit}"


def mega(v):
    return "n/a" if v is None else f"{v / 1e6:.1f}M"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help=".tflite files")
    parser.add_argument("--tflm-dir", type=Path, help="tflite-micro checkout with built libraries")
    parser.add_argument("--cpu", default="cortex-m7", choices=("cortex-m7",))
    args = parser.parse_args()
    import tfuav  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    from tfuav.models import registry

    if args.models:
        models = [(p.stem, p.read_bytes()) for p in args.models]
    else:
        models = [("vww_96", VWW.read_bytes())]
        for zoo in ZOO:
            if zoo in registry.model_names():
                print(f"converting {zoo} ...", file=sys.stderr)
                try:
                    models.append((f"{zoo}_64", zoo_model(zoo)))
                except Exception as exc:  # a model under development may not build
                    print(f"  {zoo}: could not build and convert it ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}); left out", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfuav_bench_native_") as tmp:
        work = Path(tmp)
        for name, data in models:
            print(f"{name} ...", file=sys.stderr)
            start = time.time()
            row = native_numbers(name, data, args.cpu, work)
            row["arena"], row["tflm_py_us"] = tflm_arena_and_latency(data, work / name)
            tflm = {}
            if args.tflm_dir:
                tflm = tflm_instructions(name, data, args.cpu, args.tflm_dir.resolve(), work)
            elif name.startswith("vww"):
                tflm = dict(TFLM_VWW_KNOWN)
            row["tflm_ref"], row["tflm_cmsis"] = tflm.get("reference"), tflm.get("cmsis-nn")
            print(f"  {time.time() - start:.0f} s", file=sys.stderr)
            rows.append(row)

    print(f"native engine vs TFLM, {args.cpu} (QEMU mps2-an500, -icount shift=0); M4 column: "
          "mps2-an386; every QEMU run bit-exact with the TFLite reference kernels")
    header = ("model", "weights+params B", "runtime code B", "scratch B", "stack B",
              "peak RAM B", "TFLM arena B", "RAM / arena", "in+out B", "host C us",
              "TFLM py us", "speed-up", "M7 instr", "M7 DSP instr", "M4 instr",
              "TFLM ref instr", "TFLM CMSIS-NN instr", "vs TFLM ref", "DSP vs CMSIS-NN")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        peak = r["scratch"] + r["stack"]
        cells = [r["model"], fmt(r["weights"]), fmt(r["code"]), fmt(r["scratch"]),
                 fmt(r["stack"]), fmt(peak), fmt(r["arena"]), f"{peak / r['arena']:.2f}",
                 fmt(r["io"]), fmt(r["host_us"]), fmt(r["tflm_py_us"]),
                 f"{r['tflm_py_us'] / r['host_us']:.0f}x", mega(r["m7"]), mega(r["m7_dsp"]),
                 mega(r["m4"]), mega(r["tflm_ref"]), mega(r["tflm_cmsis"]),
                 f"{r['tflm_ref'] / r['m7']:.2f}x" if r["tflm_ref"] else "n/a",
                 f"{r['tflm_cmsis'] / r['m7_dsp']:.2f}x" if r["tflm_cmsis"] else "n/a"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
