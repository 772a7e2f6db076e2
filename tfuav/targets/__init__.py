"""Target boards and their runtimes as data: configs/targets/<board>.yaml names the board
(clock, memory, compiler flags, linker script) and the runtime it uses; configs/runtimes/
<runtime>.yaml names what that runtime supports (ops, activation types) and costs (code size,
stack, arena margin)."""
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from tfuav.errors import TfuavError

CONFIG_ROOT = Path(__file__).resolve().parent.parent.parent / "configs"
TARGET_DIR = CONFIG_ROOT / "targets"
RUNTIME_DIR = CONFIG_ROOT / "runtimes"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    family: str               # cortex-m | coral | rpi
    runtime: str              # tflm | edgetpu | litert (configs/runtimes/<runtime>.yaml)
    clock_mhz: int
    flash_bytes: int          # 0 where the model lives on a host file system
    ram_bytes: int
    reserved_fraction: float  # share of flash and RAM kept for the flight stack
    cpu_flags: list = field(default_factory=list)
    arena_region_bytes: int = 0   # largest contiguous RAM block that can hold the arena
    chip: str = ""                # the reference part the linker script is written for
    linker_script: str = ""       # firmware_export/platform/<name>.ld for the real chip
    qemu_machine: str = ""        # QEMU machine emulating the same core, for the harness
    qemu_linker_script: str = ""  # firmware_export/platform/<name>.ld for that machine
    tflm_arch: str = ""           # TARGET_ARCH for TFLM's own Makefile (e.g. cortex-m7+fp)

    @property
    def flash_budget(self):
        return int(self.flash_bytes * (1 - self.reserved_fraction))

    @property
    def ram_budget(self):
        return int(self.ram_bytes * (1 - self.reserved_fraction))


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    ops: dict                     # BUILTIN_OP -> {call: registration call, types: [...]}
    code_bytes: dict = field(default_factory=dict)   # kernels -> {base, ops: {op: bytes}}
    stack_bytes: int = 0          # stack for Invoke(), with margin
    arena_margin_bytes: int = 0   # added to the arena measured on the host
    constraints: dict = field(default_factory=dict)  # BUILTIN_OP -> {check: reason}
    # kernels -> {BUILTIN_OP: cycles per multiply-accumulate}: latency estimates for the
    # MAC-heavy ops (cycles = MACs x cycles per MAC; ms = cycles / (clock_mhz x 1000))
    cycles_per_mac: dict = field(default_factory=dict)


def target_names():
    return sorted(p.stem for p in TARGET_DIR.glob("*.yaml"))


def load_target(name):
    """A board by name (configs/targets/<name>.yaml) or by the path of the user's own YAML."""
    if str(name).endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise TfuavError(f"{path}: no such target file")
        return _parse(path, Target)
    path = TARGET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise TfuavError(f"unknown target {name!r} (choose from: {', '.join(target_names())})")
    return _parse(path, Target)


def load_runtime(name):
    path = RUNTIME_DIR / f"{name}.yaml"
    if not path.is_file():
        raise TfuavError(f"no runtime profile {path} for runtime {name!r}")
    return _parse(path, Runtime)


def _parse(path, cls):
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise TfuavError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TfuavError(f"{path}: unknown key '{unknown[0]}' (expected one of: {', '.join(sorted(known))})")
    try:
        return cls(**values)
    except TypeError as err:
        raise TfuavError(f"{path}: {err}") from None
