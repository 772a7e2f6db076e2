"""Does the model fit the board? Flash = model bytes + runtime code; RAM = arena + the
application's input/output buffers + stack. Budgets are what the profile leaves after the share
reserved for the flight stack; the arena must also fit the profile's arena region."""
from dataclasses import asdict, dataclass

from tfuav.errors import TfuavError

SHRINK_HINTS = ("fewer channels (a narrower model), higher sparsity with structured channel "
                "pruning (whole channels removed), or a smaller input resolution")


class FitError(TfuavError):
    """The model needs more flash or RAM than the target profile allows."""


@dataclass
class FitResult:
    target: str
    kernels: str
    model_bytes: int
    code_bytes: int
    flash_bytes: int
    flash_budget: int
    arena_bytes: int
    io_bytes: int
    stack_bytes: int
    ram_bytes: int
    ram_budget: int
    arena_region_bytes: int

    @property
    def problems(self):
        found = []
        if self.flash_bytes > self.flash_budget:
            found.append(
                f"flash {self.flash_bytes:,} bytes (model {self.model_bytes:,} + "
                f"{self.kernels} runtime code {self.code_bytes:,}) exceeds the budget of "
                f"{self.flash_budget:,} by {self.flash_bytes - self.flash_budget:,}")
        if self.ram_bytes > self.ram_budget:
            found.append(
                f"RAM {self.ram_bytes:,} bytes (arena {self.arena_bytes:,} + I/O buffers "
                f"{self.io_bytes:,} + stack {self.stack_bytes:,}) exceeds the budget of "
                f"{self.ram_budget:,} by {self.ram_bytes - self.ram_budget:,}")
        if self.arena_region_bytes and self.arena_bytes > self.arena_region_bytes:
            found.append(
                f"the arena of {self.arena_bytes:,} bytes exceeds the {self.arena_region_bytes:,}"
                f"-byte contiguous arena region by {self.arena_bytes - self.arena_region_bytes:,}")
        return found

    @property
    def fits(self):
        return not self.problems

    def message(self):
        return (f"model does not fit {self.target}: " + "; ".join(self.problems)
                + f". What would help: {SHRINK_HINTS}. --force packages it anyway.")

    def to_dict(self):
        return {**asdict(self), "fits": self.fits}


def code_estimate(runtime, kernels, ops):
    """Runtime code flash: the runtime's base plus each distinct op's kernel (an op without a
    measurement counts as the largest one measured)."""
    if kernels not in runtime.code_bytes:
        raise TfuavError(f"runtime {runtime.name} has no code size estimate for {kernels!r} "
                         f"kernels (known: {', '.join(runtime.code_bytes)})")
    table = runtime.code_bytes[kernels]
    largest = max(table["ops"].values(), default=0)
    return int(table["base"]) + sum(int(table["ops"].get(op, largest)) for op in set(ops))


def fit_check(model_size, ops, arena_bytes, io_bytes, target, runtime, kernels="reference"):
    code = code_estimate(runtime, kernels, ops)
    return FitResult(
        target=target.name, kernels=kernels, model_bytes=int(model_size), code_bytes=code,
        flash_bytes=int(model_size) + code, flash_budget=target.flash_budget,
        arena_bytes=int(arena_bytes), io_bytes=int(io_bytes), stack_bytes=runtime.stack_bytes,
        ram_bytes=int(arena_bytes) + int(io_bytes) + runtime.stack_bytes,
        ram_budget=target.ram_budget, arena_region_bytes=target.arena_region_bytes)
