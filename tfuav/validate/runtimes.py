"""Run an int8 .tflite on the TFLite reference kernels and on TFLite Micro.

TFLM runs in a child Python process: its wrapper can crash (SIGSEGV) instead of raising, e.g.
when the arena is too small, and a crash there must not take the caller down with it.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

import numpy as np

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.errors import TfuavError

KIB = 1024
MAX_ARENA = 256 * 1024 * 1024


class TflmRunError(RuntimeError):
    """TFLM failed (error or crash) in its child process; the message says how."""


def _single_input(model_bytes):
    info = tflite_info(model_bytes)
    if len(info["inputs"]) != 1:
        raise TfuavError(f"validation supports models with one input, this one has "
                         f"{len(info['inputs'])}")
    return info


def _prepare(x, spec):
    """Cast to the model's input dtype and add the batch axis if it is missing."""
    arr = np.asarray(x)
    dtype = np.dtype(spec["dtype"])
    if arr.dtype != dtype:
        if np.issubdtype(dtype, np.integer) and not np.issubdtype(arr.dtype, np.integer):
            raise TfuavError(f"input is {arr.dtype}, the model wants {dtype}: quantize it first "
                             f"(see make_validation_inputs)")
        arr = arr.astype(dtype)
    shape = tuple(spec["shape"])
    if arr.shape != shape:
        if arr.size != int(np.prod(shape)):
            raise TfuavError(f"input of shape {arr.shape} does not fit the model input {shape}")
        arr = arr.reshape(shape)
    return np.ascontiguousarray(arr)


def _merge(outputs):
    return outputs[0] if len(outputs) == 1 else np.concatenate([o.ravel() for o in outputs])


def run_reference(model_bytes, inputs):
    """One invoke per input on the TFLite *reference* kernels; returns one output per input
    (several model outputs are flattened and concatenated)."""
    from ai_edge_litert import interpreter as litert

    spec = _single_input(model_bytes)["inputs"][0]
    interp = litert.Interpreter(
        model_content=bytes(model_bytes),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    out_indices = [d["index"] for d in interp.get_output_details()]
    results = []
    for x in inputs:
        interp.set_tensor(in_index, _prepare(x, spec))
        interp.invoke()
        results.append(_merge([interp.get_tensor(i).copy() for i in out_indices]))
    return results


# --- TFLM, in a child process -------------------------------------------------------------

_CHILD = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
work = sys.argv[1]
data = np.load(work + '/in.npz')
model = open(work + '/model.tflite', 'rb').read()
interp = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
n_out = int(sys.argv[3])
outs = {}
for k in range(int(data['n'])):
    interp.set_input(data['x%d' % k], 0)
    interp.invoke()
    for j in range(n_out):
        outs['y%d_%d' % (k, j)] = np.array(interp.get_output(j), copy=True)
np.savez(work + '/out.npz', **outs)
"""


def _describe_exit(rc, stderr):
    if rc < 0:
        try:
            how = f"crashed with {signal.Signals(-rc).name}"
        except ValueError:
            how = f"died with signal {-rc}"
    else:
        how = f"exited with status {rc}"
    tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:]
    return how + (f" ({tail[0].strip()[:200]})" if tail else "")


def _run_child(model_bytes, inputs, arena_size, n_outputs, timeout=600):
    """Returns (outputs or None, failure description or None)."""
    with tempfile.TemporaryDirectory(prefix="tfuav_tflm_") as work:
        with open(os.path.join(work, "model.tflite"), "wb") as f:
            f.write(bytes(model_bytes))
        np.savez(os.path.join(work, "in.npz"), n=len(inputs),
                 **{f"x{k}": x for k, x in enumerate(inputs)})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, work, str(int(arena_size)),
                                   str(n_outputs)],
                                  capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout} s"
        if proc.returncode != 0:
            return None, _describe_exit(proc.returncode, proc.stderr)
        data = np.load(os.path.join(work, "out.npz"))
        return [_merge([data[f"y{k}_{j}"] for j in range(n_outputs)])
                for k in range(len(inputs))], None


_RECORD_CHILD = """
import sys
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], 'rb').read()
interp = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
interp.print_allocations()
"""
_RECORD_RE = re.compile(r"Arena allocation total (\d+) bytes")


def recorded_arena_size(model_bytes, arena_size=MAX_ARENA // 16):
    """Arena bytes TFLM's recording allocator reports after allocating the model's tensors
    (head: planned activations and scratch buffers, tail: persistent data)."""
    with tempfile.TemporaryDirectory(prefix="tfuav_tflm_") as work:
        path = os.path.join(work, "model.tflite")
        with open(path, "wb") as f:
            f.write(bytes(model_bytes))
        try:
            proc = subprocess.run([sys.executable, "-c", _RECORD_CHILD, path, str(int(arena_size))],
                                  capture_output=True, text=True, timeout=300,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        except subprocess.TimeoutExpired:
            raise TflmRunError("TFLM allocation timed out after 300 s") from None
    found = _RECORD_RE.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not found:
        raise TflmRunError(f"TFLM could not allocate the model in a {arena_size:,}-byte arena: "
                           + _describe_exit(proc.returncode, proc.stderr))
    return int(found.group(1))


def _probe(model_bytes, arena_size, spec, n_outputs):
    x = np.zeros(spec["shape"], dtype=np.dtype(spec["dtype"]))
    outputs, _ = _run_child(model_bytes, [x], arena_size, n_outputs, timeout=120)
    return outputs is not None


def find_arena_size(model_bytes, start=16 * KIB, max_size=MAX_ARENA):
    """Smallest TFLM arena (a multiple of 1 KiB) for which TFLM allocates and invokes the model:
    double until one works, then bisect; every probe runs in its own child process."""
    info = _single_input(model_bytes)
    spec, n_out = info["inputs"][0], len(info["outputs"])
    lo_fail = 0  # largest size (KiB) known to fail
    hi = max(1, int(start) // KIB)
    while not _probe(model_bytes, hi * KIB, spec, n_out):
        lo_fail = hi
        hi *= 2
        if hi * KIB > max_size:
            raise TfuavError(f"TFLM could not run the model with any arena up to "
                             f"{max_size // (KIB * KIB)} MiB (unsupported op or model?)")
    while hi - lo_fail > 1:
        mid = (hi + lo_fail) // 2
        if _probe(model_bytes, mid * KIB, spec, n_out):
            hi = mid
        else:
            lo_fail = mid
    return hi * KIB


def run_tflm(model_bytes, inputs, arena_size=None):
    """One invoke per input on TFLite Micro (in a child process, input refilled before every
    invoke). arena_size None: find_arena_size first. Raises TflmRunError if TFLM fails."""
    info = _single_input(model_bytes)
    spec = info["inputs"][0]
    if arena_size is None:
        arena_size = find_arena_size(model_bytes)
    prepared = [_prepare(x, spec) for x in inputs]
    outputs, failure = _run_child(model_bytes, prepared, arena_size, len(info["outputs"]))
    if outputs is None:
        raise TflmRunError(f"TFLM run with a {arena_size}-byte arena {failure}")
    return outputs
