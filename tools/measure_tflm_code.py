#!/usr/bin/env python3
"""Measure the flash each TFLM op kernel adds to a Cortex-M firmware, for the fit check's
runtime code estimate (code_bytes in configs/runtimes/tflm.yaml).

For each kernel set it links a small program (interpreter + allocator + the harness's output
path + the platform layer, newlib-nano) once with an empty op resolver (the base) and once per
op with only that op registered, with the board build's flags and --gc-sections; an op's cost is
its .text + .rodata + .data over the base. Prints the YAML block to paste into tflm.yaml.

    python tools/measure_tflm_code.py --tflm-dir ~/tflite-micro \\
        --lib-reference gen/.../libtensorflow-microlite.a --lib-cmsis-nn gen/.../libtensorflow-microlite.a
"""
import argparse
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PLATFORM = REPO / "firmware_export" / "platform"
CPU = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <new>
#include "port.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

using Resolver = tflite::MicroMutableOpResolver<1>;
alignas(16) static uint8_t arena[4096];
alignas(Resolver) static uint8_t resolver_mem[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) static uint8_t interp_mem[sizeof(tflite::MicroInterpreter)];
const void* volatile g_model;  // not known at compile time: nothing is folded away

int main(void) {
  static char line[96];
  tfuav_port_init();
  Resolver* resolver = new (resolver_mem) Resolver();
#ifdef OP_CALL
  resolver->OP_CALL();
#endif
  tflite::MicroInterpreter* interp = new (interp_mem)
      tflite::MicroInterpreter(tflite::GetModel(g_model), *resolver, arena, sizeof arena);
  int ok = interp->AllocateTensors() == kTfLiteOk && interp->Invoke() == kTfLiteOk;
  snprintf(line, sizeof line, "{\"ok\":%d,\"cycles\":%lu}\n", ok,
           (unsigned long)tfuav_cycles_now());
  tfuav_port_write(line);
  tfuav_port_exit(0);
}
"""


def flash_bytes(elf):
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sum(v for k, v in sizes.items()
               if k in (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data",
                        ".init_array", ".fini_array"))


def link(work, lib, tflm_dir, defines, call):
    downloads = Path(tflm_dir) / "tensorflow/lite/micro/tools/make/downloads"
    name = call or "base"
    elf = Path(work) / f"{name}.elf"
    cmd = ["arm-none-eabi-g++", *CPU, "-Os", "-std=c++17", "-fno-exceptions", "-fno-rtti",
           "-fno-threadsafe-statics", "-funsigned-char", "-ffunction-sections",
           "-fdata-sections", *defines, f"-I{PLATFORM}", f"-I{tflm_dir}",
           f"-I{downloads}/flatbuffers/include", f"-I{downloads}/gemmlowp",
           *([f"-DOP_CALL={call}"] if call else []), "-x", "c++", str(Path(work) / "main.cc"),
           "-x", "c", *(str(PLATFORM / f) for f in ("startup_cortex_m.c", "cycles.c",
                                                    "port_uart_template.c")),
           "-x", "none", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
           "-Wl,--gc-sections", f"-T{PLATFORM / 'stm32h743.ld'}", str(lib), "-lm",
           "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"link failed for {name}:\n{proc.stderr[-2000:]}")
    return flash_bytes(elf)


def measure(tflm_dir, lib, defines, ops):
    with tempfile.TemporaryDirectory(prefix="tfuav_code_") as work:
        (Path(work) / "main.cc").write_text(PROGRAM)
        base = link(work, lib, tflm_dir, defines, None)
        with ThreadPoolExecutor(2) as pool:
            sizes = list(pool.map(lambda op: link(work, lib, tflm_dir, defines, ops[op]["call"]),
                                  sorted(ops)))
    return base, {op: size - base for op, size in zip(sorted(ops), sizes)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflm-dir", required=True, type=Path)
    parser.add_argument("--lib-reference", required=True, type=Path)
    parser.add_argument("--lib-cmsis-nn", required=True, type=Path)
    args = parser.parse_args()
    ops = yaml.safe_load((REPO / "configs/runtimes/tflm.yaml").read_text())["ops"]
    common = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_STRIP_ERROR_STRINGS", "-DNDEBUG"]
    result = {}
    for kernels, lib, defines in (("reference", args.lib_reference, common),
                                  ("cmsis-nn", args.lib_cmsis_nn, common + ["-DCMSIS_NN"])):
        print(f"measuring {kernels} ...", file=sys.stderr)
        base, per_op = measure(args.tflm_dir.resolve(), lib.resolve(), defines, ops)
        result[kernels] = {"base": base, "ops": per_op}
    print("code_bytes:")
    for kernels, table in result.items():
        print(f"  {kernels}:\n    base: {table['base']}\n    ops:")
        for op, size in table["ops"].items():
            print(f"      {op}: {size}")


if __name__ == "__main__":
    main()
