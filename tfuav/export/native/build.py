"""Compiling and running a generated native package: host executable (gcc/clang), Cortex-M
image for QEMU's mps2 machines (arm-none-eabi-gcc + the tfuav platform layer), and reading
back what the harness prints and what the linker placed where."""
import re
import shutil
import subprocess
from pathlib import Path

from tfuav.errors import TfuavError

PLATFORM_DIR = Path(__file__).resolve().parents[3] / "firmware_export" / "platform"
HARNESS_DIR = Path(__file__).resolve().parents[3] / "firmware_export" / "native"
CPU_FLAGS = {
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
}
QEMU = {"cortex-m7": ("mps2-an500", "mps2_an500.ld"), "cortex-m4": ("mps2-an386", "mps2_an386.ld")}
PLATFORM_C = ("startup_cortex_m.c", "port_semihosting.c", "cycles.c")
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def _run(cmd, timeout=600, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout, **kwargs)
    if proc.returncode:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        raise TfuavError(f"`{' '.join(map(str, cmd[:3]))} ...` failed:\n{err[-3000:]}")
    return proc


def host_compiler():
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return cc
    return None


def model_sources(folder):
    folder = Path(folder)
    return sorted(str(p) for p in folder.glob("*.c")
                  if p.name not in ("main.c", "host_main.c", "golden.c", "port_uart_template.c")
                  + PLATFORM_C)


def build_host(folder, out, cc=None, opt="-O2", extra=()):
    """Host executable of host_main.c + the model; fails on any compiler warning."""
    cc = cc or host_compiler()
    if cc is None:
        raise TfuavError("no C compiler (cc, gcc, clang) on PATH")
    folder = Path(folder)
    _run([cc, "-std=c99", opt, *WARNINGS, "-pedantic", *extra, f"-I{folder}",
          *model_sources(folder), str(folder / "host_main.c"), "-o", str(out)])
    return Path(out)


def run_host(binary, inputs):
    """Output bytes for each input (bytes-like), one process for all of them."""
    data = b"".join(bytes(x) for x in inputs)
    out = _run([binary], input=data).stdout
    n = len(inputs)
    size = len(out) // n if n else 0
    return [out[i * size:(i + 1) * size] for i in range(n)]


def host_latency_ns(binary, one_input, runs=20):
    return float(_run([binary, "--bench", str(runs)], input=bytes(one_input)).stdout.decode())


def build_qemu(folder, out, cpu="cortex-m7", opt="-O2", dsp=False, map_file=None,
               profile=False):
    """Cortex-M image of main.c + golden data + the model + the platform layer for QEMU's
    mps2 machine of that core, with the instruction counter (CMSDK timer) enabled."""
    folder, out = Path(folder), Path(out)
    _, ldscript = QEMU[cpu]
    flags = [*CPU_FLAGS[cpu], "-std=c99", opt, *WARNINGS, "-ffunction-sections",
             "-fdata-sections", "-DTFUAV_MPS2_TIMER", f"-I{folder}", f"-I{PLATFORM_DIR}"]
    if dsp:
        flags.append("-DTFUAV_USE_DSP")
    if profile:
        flags.append("-DTFUAV_PROFILE")
    link = ["-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections",
            f"-T{PLATFORM_DIR / ldscript}"]
    if map_file:
        link.append(f"-Wl,-Map={map_file}")
    objdir = out.parent / f"{out.stem}_obj"
    objdir.mkdir(parents=True, exist_ok=True)
    objects = []
    for src in [*model_sources(folder), str(folder / "golden.c"), str(folder / "main.c"),
                *(str(PLATFORM_DIR / f) for f in PLATFORM_C)]:
        obj = objdir / (Path(src).stem + ".o")
        _run(["arm-none-eabi-gcc", *flags, "-c", src, "-o", str(obj)])
        objects.append(str(obj))
    _run(["arm-none-eabi-gcc", *CPU_FLAGS[cpu], *link, *objects, "-o", str(out)])
    return out


def run_qemu(elf, cpu="cortex-m7", timeout=600):
    """The harness's report: outputs (hex per golden index), matches, instructions, stack,
    passed, and the raw text."""
    machine, _ = QEMU[cpu]
    proc = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-semihosting",
                           "-icount", "shift=0", "-kernel", str(elf)],
                          capture_output=True, text=True, timeout=timeout)
    return parse_harness(proc.stdout, proc.returncode)


def parse_harness(text, returncode=0):
    report = {"outputs": {}, "golden": {}, "instructions": None, "stack": None,
              "passed": False, "returncode": returncode, "text": text}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "output":
            report["outputs"][int(words[1])] = bytes.fromhex(words[2])
        elif len(words) == 2 and words[0] == "output":
            report["outputs"][int(words[1])] = b""
        elif len(words) == 3 and words[0] == "golden":
            report["golden"][int(words[1])] = words[2] == "match"
        elif len(words) == 2 and words[0] in ("instructions", "stack", "cycles"):
            report[words[0]] = int(words[1])
        elif len(words) == 3 and words[0] == "op":
            report.setdefault("ops", {})[int(words[1])] = int(words[2])
    report["passed"] = returncode == 0 and text.rstrip().endswith("PASS")
    return report


_MAP_SECTION = re.compile(r"^\s*(\.\S+)?\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)\)?$")


def flash_by_object(map_file):
    """{object file name: {"text": bytes, "rodata": bytes, "data": bytes}} of what the linker
    kept (after --gc-sections), read from its map file."""
    result = {}
    section = None
    discarded = False
    for raw in Path(map_file).read_text().splitlines():
        if raw.startswith("Discarded input sections"):
            discarded = True
        elif raw.startswith("Memory Configuration") or raw.startswith("Linker script and memory map"):
            discarded = False
        if discarded:
            continue
        stripped = raw.strip()
        if stripped.startswith(".") and len(stripped.split()) == 1:
            section = stripped
            continue
        m = _MAP_SECTION.match(raw)
        if not m:
            continue
        name = m.group(1) or section or ""
        size = int(m.group(3), 16)
        if size == 0 or int(m.group(2), 16) == 0 and not name.startswith(".isr"):
            continue
        obj = Path(m.group(4).split("(")[-1]).name
        kind = ("text" if name.startswith(".text") else "rodata" if name.startswith(".rodata")
                else "data" if name.startswith(".data") else None)
        if kind:
            result.setdefault(obj, {"text": 0, "rodata": 0, "data": 0})[kind] += size
        section = None
    return result
