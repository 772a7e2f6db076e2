"""Target boards as data: one YAML file per board in configs/targets/."""
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from tfuav.errors import TfuavError

TARGET_DIR = Path(__file__).resolve().parent.parent.parent / "configs" / "targets"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    family: str               # cortex-m | coral | rpi
    runtime: str              # tflm | edgetpu | litert
    clock_mhz: int
    flash_bytes: int          # 0 where the model lives on a host file system
    ram_bytes: int
    reserved_fraction: float  # share of flash and RAM kept for the flight stack
    cpu_flags: list = field(default_factory=list)
    arena_region_bytes: int = 0

    @property
    def flash_budget(self):
        return int(self.flash_bytes * (1 - self.reserved_fraction))

    @property
    def ram_budget(self):
        return int(self.ram_bytes * (1 - self.reserved_fraction))


def target_names():
    return sorted(p.stem for p in TARGET_DIR.glob("*.yaml"))


def load_target(name):
    path = TARGET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise TfuavError(f"unknown target {name!r} (choose from: {', '.join(target_names())})")
    return _parse(path)


def _parse(path):
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise TfuavError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    known = {f.name for f in fields(Target)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TfuavError(f"{path}: unknown key '{unknown[0]}' (expected one of: {', '.join(sorted(known))})")
    try:
        return Target(**values)
    except TypeError as err:
        raise TfuavError(f"{path}: {err}") from None
