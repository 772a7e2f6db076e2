"""Latency benchmark of a .tflite model on this machine: warm-up, then timed invokes."""
import sys
import time

import numpy as np

from .interpreter import Classifier, TfliteModel


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (ru_maxrss: KiB on Linux,
    bytes on macOS)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _bench_input(classifier, seed=0):
    """A fixed random input tensor in the model's input dtype and shape."""
    rng = np.random.default_rng(seed)
    dtype = classifier.input_dtype
    shape = classifier.input_shape
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def benchmark(model, threads=None, runs=50, warmup=5, edgetpu=False):
    """Time `runs` invokes after `warmup` untimed ones. `model`: a .tflite path, a Classifier
    or a Detector.

    Returns a dict: model, input shape and dtype, threads (None: the interpreter's default),
    edgetpu, runs, warmup, p50_ms / p90_ms / p99_ms / mean_ms / min_ms (latency of
    set input + invoke + get output), fps (1000 / mean_ms) and peak_rss_mib (the peak resident
    memory of the whole process, from getrusage).
    """
    runs, warmup = int(runs), int(warmup)
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    classifier = model if isinstance(model, TfliteModel) else Classifier(
        model, num_threads=threads, edgetpu=edgetpu)
    x = _bench_input(classifier)
    for _ in range(warmup):
        classifier.invoke(x)
    times = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = time.perf_counter()
        classifier.invoke(x)
        times[i] = (time.perf_counter() - start) * 1000.0
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    mean = float(times.mean())
    return {"model": str(classifier.model_path),
            "input_shape": list(classifier.input_shape),
            "input_dtype": classifier.input_dtype.name,
            "threads": classifier.num_threads,
            "edgetpu": classifier.edgetpu,
            "runs": runs, "warmup": warmup,
            "p50_ms": round(p50, 4), "p90_ms": round(p90, 4), "p99_ms": round(p99, 4),
            "mean_ms": round(mean, 4), "min_ms": round(float(times.min()), 4),
            "fps": round(1000.0 / mean, 2) if mean > 0 else float("inf"),
            "peak_rss_mib": round(peak_rss_mib(), 1)}


COLUMNS = [("threads", "threads", "{}"), ("runs", "runs", "{}"), ("p50_ms", "p50 ms", "{:.3f}"),
           ("p90_ms", "p90 ms", "{:.3f}"), ("p99_ms", "p99 ms", "{:.3f}"),
           ("fps", "FPS", "{:.1f}"), ("peak_rss_mib", "peak RSS MiB", "{:.1f}")]


def format_table(results):
    """Plain-text table of one benchmark dict or a list of them (one row each)."""
    if isinstance(results, dict):
        results = [results]
    header = [title for _, title, _ in COLUMNS]
    rows = []
    for r in results:
        row = []
        for key, _, fmt in COLUMNS:
            value = r.get(key)
            row.append("default" if value is None else fmt.format(value))
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = []
    if results:
        first = results[0]
        shape = "x".join(str(d) for d in first.get("input_shape", []))
        lines.append(f"model {first.get('model')}  input {shape} {first.get('input_dtype')}"
                     f"{'  edgetpu' if first.get('edgetpu') else ''}")
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows)
    return "\n".join(lines)
