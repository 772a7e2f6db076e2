#!/usr/bin/env python3
"""Build the exported TFLM harness for QEMU and run it: golden check, arena used on the
target and flash, per model and kernel set, as one table.

Needs a tflite-micro checkout whose third-party downloads are present (TFLM's Makefile
fetches them on first use; it also wants python3 with numpy and Pillow on PATH), plus
arm-none-eabi-gcc and qemu-system-arm.

    python tools/bench_tflm_qemu.py --tflm-dir ~/tflite-micro [--target cortex-m7] [MODEL.tflite ...]
        [--lib-reference LIB.a --lib-cmsis-nn LIB.a]   # reuse TFLM libraries built before

Without models it runs the MLPerf Tiny VWW fixture and GlimmerNet / TakuNet at 64x64 (random
weights: the graph, not the accuracy, decides flash, arena and bit-exactness).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VWW = REPO.parent / "shared" / "fixtures" / "mlperf_tiny_vww" / "vww_96_int8.tflite"
KERNELS = {"reference": "0", "cmsis-nn": "1"}


def zoo_model(name):
    import numpy as np
    import tensorflow as tf

    from tfuav.convert import to_int8_tflite
    from tfuav.models import build_model
    model = build_model(name, (64, 64, 3), 4)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)])
    return to_int8_tflite(model, rng.uniform(0, 1, (8, 64, 64, 3)).astype(np.float32))


def run(cmd, cwd=None, timeout=3600):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def bench(name, model_bytes, target, tflm_dir, libs, work):
    from tfuav.export.fit import code_estimate
    from tfuav.export.tflm import export_tflm
    from tfuav.targets import load_runtime, load_target
    out = Path(work) / name
    summary = export_tflm(model_bytes, load_target(target), out, name=name, golden_count=2,
                          echo=lambda *_: None)
    folder = out / "firmware"
    golden_bytes = 2 * (summary["fit"]["io_bytes"])
    rows = []
    for kernels, flag in KERNELS.items():
        make = ["make", "-s", f"TFLM_DIR={tflm_dir}", "BOARD=qemu", f"CMSIS_NN={flag}",
                f"TFLM_LIB={libs[kernels]}"]
        run(make + ["all"], cwd=folder)
        elf = folder / "build" / f"qemu-{'cmsis_nn' if flag == '1' else 'reference'}" / "harness.elf"
        text, data, bss = map(int, run(["arm-none-eabi-size", str(elf)]).stdout.splitlines()[1].split()[:3])
        proc = subprocess.run(make + ["run"], cwd=folder, capture_output=True, text=True, timeout=1200)
        events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
        setup = next(e for e in events if e["event"] == "setup")
        stack = next(e for e in events if e["event"] == "stack")["invoke_bytes"]
        verdict = "PASS" if "PASS" in proc.stdout.splitlines() and proc.returncode == 0 else "FAIL"
        estimate = code_estimate(load_runtime("tflm"), kernels, summary["ops"])
        rows.append((name, kernels, len(model_bytes), text - len(model_bytes) - golden_bytes,
                     estimate, text + data, summary["arena"]["recorded_bytes"], setup["arena_bytes"],
                     setup["arena_used_bytes"], stack, verdict))
    return rows


def build_libs(tflm_dir, target, work):
    """Build TFLM once per kernel set through the exported Makefile's `tflm` goal."""
    from tfuav.export.tflm import export_tflm
    from tfuav.targets import load_target
    folder = Path(work) / "_tflm" / "firmware"
    export_tflm(VWW.read_bytes(), load_target(target), folder.parent, name="lib",
                echo=lambda *_: None, force=True)
    libs = {}
    for kernels, flag in KERNELS.items():
        print(f"building TFLM ({kernels} kernels) ...", file=sys.stderr)
        run(["make", "-s", "-j2", f"TFLM_DIR={tflm_dir}", f"CMSIS_NN={flag}", "tflm"], cwd=folder)
        sub = "cmsis_nn" if flag == "1" else "reference"
        libs[kernels] = folder / "build" / f"tflm-{sub}" / "lib" / "libtensorflow-microlite.a"
    return libs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help=".tflite files")
    parser.add_argument("--tflm-dir", required=True, type=Path)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--lib-reference", type=Path, help="prebuilt TFLM library (reference kernels)")
    parser.add_argument("--lib-cmsis-nn", type=Path, help="prebuilt TFLM library (CMSIS-NN kernels)")
    args = parser.parse_args()
    import tfuav  # noqa: F401  (selects Keras 2 before TensorFlow loads)

    if args.models:
        models = [(p.stem, p.read_bytes()) for p in args.models]
    else:
        models = [("vww_96", VWW.read_bytes()), ("glimmernet_64", zoo_model("glimmernet")),
                  ("takunet_64", zoo_model("takunet"))]
    with tempfile.TemporaryDirectory(prefix="tfuav_bench_") as work:
        if args.lib_reference and args.lib_cmsis_nn:
            libs = {"reference": args.lib_reference.resolve(),
                    "cmsis-nn": args.lib_cmsis_nn.resolve()}
        else:
            libs = build_libs(args.tflm_dir.resolve(), args.target, work)
        rows = []
        for name, data in models:
            print(f"{name} ...", file=sys.stderr)
            rows += bench(name, data, args.target, args.tflm_dir.resolve(), libs, work)
    header = ("model", "kernels", "model B", "code B (TFLM+harness+libc)", "code estimate B",
              "flash B", "host arena B",
              "exported arena B", "target arena used B", "Invoke stack B", "golden")
    print(f"target {args.target}, QEMU {'mps2-an500' if args.target == 'cortex-m7' else 'mps2-an386'}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
