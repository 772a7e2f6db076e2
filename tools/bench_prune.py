#!/usr/bin/env python3
"""Channel pruning benchmark: MACs, parameters, flash, TFLM arena and accuracy (AP for the
detector, accuracy for the classifiers) of each model before and after structured channel
pruning to a MAC budget, all from real builds for a Cortex-M target.

    python tools/bench_prune.py [--models uavlite,glimmernet,takunet] [--budgets 0.75,0.5]
        [--epochs N] [--target cortex-m7] [--work runs/bench-prune]

Each model is built with `tfuav build` (embedded synthetic data), then compressed with
`tfuav compress --prune-channels --budget-macs B`, which sparse-trains, prunes and fine-tunes it,
and is converted, validated (TFLite reference kernels vs TFLM) and exported again.
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(model, target, epochs, budgets, work):
    """The build's report, then one report per budget (each pruning the same trained model)."""
    from tfuav.config import default_config_file, load_config
    from tfuav.pipeline import build
    out = Path(work) / model
    config = load_config(default_config_file(model),
                         {"model": {"name": model}, "train": {"epochs": epochs} if epochs else {}})
    reports = [build(config, target, out, force=True, echo=lambda *_: None)]
    for budget in budgets:
        config.compress.prune_channels = True
        config.compress.budget_macs = budget
        reports.append(build(config, target, out / f"pruned-{budget:g}", force=True,
                             echo=lambda *_: None, model_file=out / "model.keras"))
    return reports


def row(name, report):
    fw = report.get("firmware") or {}
    int8 = report["metrics"]["int8"]
    quality = (f"AP50 {int8['AP50']:.3f} / AP {int8['AP']:.3f}" if report.get("task") == "detection"
               else f"accuracy {int8['accuracy']:.3f}")
    return (f"| {name} | {report['macs']:,} | {report['params_total']:,} | "
            f"{fw.get('fit', {}).get('flash_bytes', 0):,} | "
            f"{fw.get('arena', {}).get('arena_bytes', 0):,} | {quality} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="uavlite,glimmernet,takunet")
    parser.add_argument("--budgets", default="0.75,0.5", help="MAC fractions to prune to")
    parser.add_argument("--epochs", type=int, help="default: the model's build config")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--work", default="runs/bench-prune")
    args = parser.parse_args()
    import tfuav  # noqa: F401  (before TensorFlow)
    budgets = [float(b) for b in args.budgets.split(",")]
    lines = [f"Channel pruning on {args.target}; int8 metrics on the synthetic test split", "",
             "| model | MACs | params | flash (bytes) | arena (bytes) | int8 quality |",
             "|---|---|---|---|---|---|"]
    results = {}
    for model in args.models.split(","):
        reports = run(model, args.target, args.epochs, budgets, args.work)
        names = [model] + [f"{model}, pruned to {b:.0%} of the MACs" for b in budgets]
        lines += [row(name, report) for name, report in zip(names, reports)]
        results[model] = [r["channel_pruning"] for r in reports[1:]]
        print("\n".join(lines[-len(reports):]), flush=True)
    print("\n".join(lines))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / "pruning.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
