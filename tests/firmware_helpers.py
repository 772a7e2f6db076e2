"""Reading generated firmware sources back, compiling them with arm-none-eabi-gcc and running
them in QEMU (tests only)."""
import re
import subprocess
from pathlib import Path

import numpy as np

C_DIR = Path(__file__).resolve().parent / "c"
CPU_FLAGS = {
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
}
QEMU = {"cortex-m7": ("mps2-an500", "mps2_an500.ld"), "cortex-m4": ("mps2-an386", "mps2_an386.ld")}
# Sources of the firmware folder that do not need TFLM headers.
TFLM_FREE_C = ["startup_cortex_m.c", "cycles.c", "port_semihosting.c", "port_uart_template.c"]
TFLM_FREE_CXX = ["model_data.cc", "golden_data.cc"]


def c_define(text, name):
    found = re.search(rf"^#define {name} (\S+)", text, re.MULTILINE)
    assert found, f"#define {name} missing"
    return found.group(1)


def c_arrays(text):
    """{name: bytes} of every brace-initialised byte array in a C source."""
    arrays = {}
    for m in re.finditer(r"unsigned char (\w+)(?:\[[^\]]*\])+ = \{(.*?)\n\};", text, re.DOTALL):
        arrays[m.group(1)] = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", m.group(2)))
    return arrays


def golden_vectors(folder):
    """(inputs, outputs) as lists of bytes, read back from golden_data.cc / model_config.h."""
    config = (folder / "model_config.h").read_text()
    n_in = int(c_define(config, "MODEL_INPUT_BYTES"))
    n_out = int(c_define(config, "MODEL_OUTPUT_BYTES"))
    arrays = c_arrays((folder / "golden_data.cc").read_text())
    ins, outs = arrays["g_golden_input"], arrays["g_golden_output"]
    assert len(ins) % n_in == 0 and len(outs) // n_out == len(ins) // n_in
    return ([ins[k:k + n_in] for k in range(0, len(ins), n_in)],
            [outs[k:k + n_out] for k in range(0, len(outs), n_out)])


def compile_tflm_free_sources(folder, target="cortex-m7"):
    """Compile every source of the folder that needs no TFLM header; fails on any warning."""
    flags = CPU_FLAGS[target] + ["-Wall", "-Wextra", "-Werror", "-c", "-o", "/dev/null"]
    for name in TFLM_FREE_C:
        _check(["arm-none-eabi-gcc", *flags, "-std=c99", str(folder / name)])
    for name in TFLM_FREE_CXX:
        _check(["arm-none-eabi-g++", *flags, "-std=c++17", str(folder / name)])
    probe = folder.parent / "config_probe.c"  # the headers must be plain C
    probe.write_text('#include "model_config.h"\n#include "golden_data.h"\n'
                     "int main(void) { return kModelInputDims[0] + kModelOutputDims[0]"
                     " + (int)kModelLabels[0][0] + MODEL_ARENA_BYTES; }\n")
    _check(["arm-none-eabi-gcc", *flags, "-std=c99", f"-I{folder}", str(probe)])


def run_boot_check(folder, work, target):
    """Link tests/c/boot_check.cc with the folder's platform layer and arrays, run it in QEMU;
    returns its output lines."""
    machine, ldscript = QEMU[target]
    elf = Path(work) / "boot_check.elf"
    _check(["arm-none-eabi-g++", *CPU_FLAGS[target], "-O2", "-std=c++17", "-fno-exceptions",
            "-fno-rtti", "-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs",
            "-Wl,--gc-sections", f"-T{folder / ldscript}", f"-I{folder}",
            str(C_DIR / "boot_check.cc"), *(str(folder / f) for f in TFLM_FREE_CXX),
            *(str(folder / f) for f in ("startup_cortex_m.c", "cycles.c", "port_semihosting.c")),
            "-o", str(elf)])
    proc = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-semihosting",
                           "-kernel", str(elf)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def _check(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


def as_array(data, dtype, shape):
    return np.frombuffer(data, dtype=dtype).reshape(shape)
