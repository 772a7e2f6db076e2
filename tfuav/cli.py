"""Command-line entry point. Argument plumbing only; the work lives in the stage modules."""
import json
import sys
from pathlib import Path

import click

from tfuav.errors import TfuavError



class Cli(click.Group):
    """Turns user errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TfuavError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=Cli)
@click.version_option(package_name="tfuav")
def main():
    """tfuav: UAV vision models from Keras to int8 firmware for Cortex-M, Coral and Raspberry Pi."""


RUNTIME_OPTION = click.option(
    "--runtime", type=click.Choice(["tflm", "native"]), default="tflm", show_default=True,
    help="Cortex-M: the TFLM interpreter, or tfuav's generated C engine (native/).")


def _choices(kind):
    def check(ctx, param, value):
        if value is None:
            return value
        if kind == "target":
            from tfuav.targets import load_target, target_names
            if value.endswith((".yaml", ".yml")):
                load_target(value)  # a board file of the user's: must parse
                return value
            names = target_names()
        else:
            from tfuav.models.registry import model_names
            names = model_names()
        if value not in names:
            raise TfuavError(f"unknown {kind} {value!r} (choose from: {', '.join(names)})")
        return value
    return check


@main.command()
@click.option("--target", required=True, callback=_choices("target"), help="Board profile (see `tfuav targets`).")
@click.option("--model", callback=_choices("model"), help="Registered model (see `tfuav models`).")
@click.option("--data", type=click.Path(), help="Classifiers: image folder (class per sub-folder); detectors: VisDrone-DET folder or COCO .json; default: embedded synthetic scenes.")
@click.option("--config", "config_file", type=click.Path(), help="YAML config; default: configs/default.yaml (classifiers) or configs/detection.yaml (detectors).")
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--out", type=click.Path(), help="Build directory; default: runs/<model>-<target>.")
@click.option("--resume", is_flag=True, help="Continue training from the last checkpoint in --out.")
@click.option("--strict", is_flag=True, help="Unreadable images are an error instead of a warning.")
@click.option("--kernels", type=click.Choice(["reference", "cmsis-nn"]), default="reference",
              show_default=True, help="TFLM kernels the firmware folder builds with by default.")
@RUNTIME_OPTION
@click.option("--force", is_flag=True, help="A model that does not fit the board is a warning, not an error.")
def build(target, model, data, config_file, epochs, out, resume, strict, kernels, force, runtime):
    """Data -> train -> compress -> int8 TFLite -> cross-runtime validation -> report."""
    from tfuav.config import default_config_file, load_config
    from tfuav.pipeline import build as run_build
    overrides = {"data": {}, "model": {}, "train": {}}
    if model:
        overrides["model"]["name"] = model
    if data:
        overrides["data"]["path"] = data
    if strict:
        overrides["data"]["strict"] = True
    if epochs:
        overrides["train"]["epochs"] = epochs
    config = load_config(config_file or default_config_file(model), overrides)
    out = Path(out or Path("runs") / f"{config.model.name}-{Path(target).stem}")
    run_build(config, target, out, resume=resume, kernels=kernels, force=force, echo=click.echo,
              runtime=runtime)


@main.command()
@click.argument("build_dir", type=click.Path())
@click.option("--prune-channels", is_flag=True,
              help="Structured channel pruning: sparse training, exact surgery, fine-tuning.")
@click.option("--budget-macs", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True, help="Fraction of the model's MACs to keep.")
@click.option("--budget-latency-ms", type=click.FloatRange(0, min_open=True),
              help="Instead: latency estimated on the (Cortex-M) target.")
@click.option("--low-rank", "low_rank", type=click.FloatRange(0, 1, min_open=True),
              help="Also factorize 1x1 convolutions by SVD, keeping this fraction of the energy.")
@click.option("--slimming-epochs", type=click.IntRange(min=0), help="Sparse-training epochs before the surgery.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), help="Fine-tuning epochs after it.")
@click.option("--target", callback=_choices("target"), help="Board profile; default: the build's.")
@click.option("--out", type=click.Path(), help="Output build directory; default: BUILD_DIR/compressed.")
@click.option("--kernels", type=click.Choice(["reference", "cmsis-nn"]), default="reference",
              show_default=True, help="Cortex-M: TFLM kernels (and their latency estimate).")
@click.option("--force", is_flag=True, help="A model that does not fit the board is a warning, not an error.")
@RUNTIME_OPTION
def compress(build_dir, prune_channels, budget_macs, budget_latency_ms, low_rank, slimming_epochs,
             finetune_epochs, target, out, kernels, force, runtime):
    """Compress the model of a finished build, then convert, validate and export it again."""
    from tfuav.config import load_config
    from tfuav.pipeline import build as run_build
    build_dir = Path(build_dir)
    report_file, model_file = build_dir / "report.json", build_dir / "model.keras"
    for path in (report_file, model_file):
        if not path.is_file():
            raise TfuavError(f"{path} not found: BUILD_DIR must be the output of `tfuav build`")
    if not (prune_channels or low_rank):
        raise TfuavError("nothing to do: give --prune-channels and/or --low-rank")
    try:
        report = json.loads(report_file.read_text())
        saved = report["config"]
    except (ValueError, KeyError):
        raise TfuavError(f"{report_file}: not a tfuav build report (no 'config')") from None
    c = {"prune_channels": prune_channels, "budget_macs": budget_macs,
         "budget_latency_ms": budget_latency_ms, "lowrank_energy": low_rank,
         "prune_sparsity": 0.0, "qat": False}
    if slimming_epochs is not None:
        c["slimming_epochs"] = slimming_epochs
    if finetune_epochs is not None:
        c["finetune_epochs"] = finetune_epochs
    saved.setdefault("compress", {}).update(c)
    config = load_config(overrides=saved)
    run_build(config, target or report["target"], Path(out or build_dir / "compressed"),
              kernels=kernels, force=force, echo=click.echo, model_file=model_file,
              runtime=runtime)


@main.command()
@click.argument("model_file", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Folder for model_int8.tflite and report.json.")
@click.option("--data", type=click.Path(), help="Image folder for representative data; default: synthetic scenes.")
@click.option("--float-io", is_flag=True, help="Keep float32 input/output.")
def convert(model_file, out, data, float_io):
    """Convert a Keras .h5/.keras model to a checked, cross-validated int8 .tflite."""
    from tfuav.byom import convert_keras_file
    convert_keras_file(model_file, Path(out), data_dir=data, float_io=float_io, echo=click.echo)


@main.command()
@click.argument("model_file", type=click.Path())
@click.option("--target", callback=_choices("target"),
              help="Board profile (see `tfuav targets`) or the path of a board YAML file.")
@click.option("--format", "fmt", type=click.Choice(["target", "onnx"]), default="target",
              show_default=True,
              help="target: package an int8 .tflite for --target; onnx: a Keras file as float ONNX.")
@click.option("--out", type=click.Path(), help="Output folder; default: runs/<model>-<target or onnx>.")
@click.option("--name", help="Model name for C symbols and messages; default: the file name.")
@click.option("--labels", "labels_file", type=click.Path(), help="Text file, one class label per line.")
@click.option("--kernels", type=click.Choice(["reference", "cmsis-nn"]), default="reference",
              show_default=True, help="Cortex-M: TFLM kernels the firmware folder builds with by default.")
@click.option("--golden", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Cortex-M: number of golden input/output vectors in the firmware.")
@click.option("--force", is_flag=True, help="A model that does not fit the board is a warning, not an error.")
@RUNTIME_OPTION
@click.option("--detector", is_flag=True,
              help="The model is a detector: one output [1, H, W, classes + 4] (cortex-m and rpi targets).")
@click.option("--classes", help="Class names, comma-separated (instead of --labels), e.g. person,car.")
@click.option("--stride", type=click.IntRange(min=1),
              help="Detectors: input pixels per output cell; default: input size / output grid.")
@click.option("--max-boxes", type=click.IntRange(min=1),
              help="Detectors: boxes per image at most (default 20).")
@click.option("--score-threshold", type=float,
              help="Detectors: keep boxes scoring at least this (default 0.3).")
def export(model_file, target, fmt, out, name, labels_file, kernels, golden, force, runtime,
           detector, classes, stride, max_boxes, score_threshold):
    """Package a model: an int8 .tflite for a board (Cortex-M firmware folder, Raspberry Pi
    bundle, Coral Edge TPU report and bundle), or a Keras .h5/.keras file as ONNX."""
    if fmt == "onnx":
        from tfuav.convert.onnx import export_onnx_file
        stem = Path(model_file).stem
        out_path = Path(out or Path("runs") / f"{stem}-onnx") / f"{stem}.onnx"
        result = export_onnx_file(model_file, out_path)
        click.echo(f"wrote {result['path']} ({result['bytes']:,} bytes); onnxruntime matches "
                   f"Keras within {result['verify']['max_abs_diff']:.2e}")
        return
    if not target:
        raise TfuavError("--target is required (or --format onnx)")
    from tfuav.export import export_model_file
    summary = export_model_file(model_file, target, out, name=name, labels_file=labels_file,
                                kernels=kernels, golden_count=golden, force=force,
                                echo=click.echo, classes=classes, detector=detector,
                                stride=stride, top_k=max_boxes,
                                score_threshold=score_threshold, runtime=runtime)
    detection = summary.get("detection")
    if detection:
        click.echo(f"detector: {detection['num_classes']} classes, stride {detection['stride']}, "
                   f"at most {detection['top_k']} boxes, scores >= "
                   f"{detection['score_threshold']:g}")
    fit = summary.get("fit")
    if summary.get("engine") == "native":
        click.echo(f"wrote {summary['folder']}: scratch {summary['scratch_bytes']:,} bytes, "
                   f"flash {fit['flash_bytes']:,}/{fit['flash_budget']:,}, "
                   f"RAM {fit['ram_bytes']:,}/{fit['ram_budget']:,} bytes")
    elif fit:
        click.echo(f"wrote {summary['folder']}: arena {summary['arena']['arena_bytes']:,} bytes, "
                   f"flash {fit['flash_bytes']:,}/{fit['flash_budget']:,}, "
                   f"RAM {fit['ram_bytes']:,}/{fit['ram_budget']:,} bytes")
    else:
        click.echo(f"wrote {summary['folder']}")


@main.command()
def models():
    """List the registered models."""
    from tfuav.models.registry import get_spec, model_names
    for name in model_names():
        spec = get_spec(name)
        shape = "x".join(map(str, spec.default_input_shape))
        click.echo(f"{name:12s} {shape:12s} {spec.description}")


@main.command()
def targets():
    """List the target boards with their budgets."""
    from tfuav.targets import load_target, target_names
    click.echo(f"{'target':10s} {'runtime':8s} {'clock':>9s} {'flash budget':>13s} "
               f"{'RAM budget':>11s} {'arena region':>13s}  description")
    for name in target_names():
        t = load_target(name)
        flash = f"{t.flash_budget // 1024} KB" if t.flash_bytes else "host"
        region = f"{t.arena_region_bytes // 1024} KB" if t.arena_region_bytes else "-"
        click.echo(f"{t.name:10s} {t.runtime:8s} {t.clock_mhz:>5d} MHz {flash:>13s} "
                   f"{t.ram_budget // 1024:>8d} KB {region:>13s}  {t.description}")


@main.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(model, as_json):
    """Summarise a registered model name, a Keras .h5/.keras file or a .tflite file."""
    from tfuav.inspect import describe
    info = describe(model)
    if as_json:
        click.echo(json.dumps(info))
        return
    for key, value in info.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        click.echo(f"{key:18s} {value}")


@main.command()
@click.argument("model_file", type=click.Path())
@click.option("--source", required=True,
              help="Image file, folder of images (sorted by name), video file or camera index.")
@click.option("--labels", "labels_file", type=click.Path(), help="Text file, one class label per line.")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Classes per frame.")
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads; default: the interpreter's choice.")
@click.option("--save-video", type=click.Path(), help="Write an annotated video (.mp4 or .avi).")
@click.option("--edgetpu", is_flag=True, help="Run on a Coral Edge TPU (needs libedgetpu).")
@click.option("--detector", is_flag=True,
              help="The model is a detector (automatic when a detector.json is next to it).")
@click.option("--score-threshold", type=float,
              help="Detectors: keep boxes scoring at least this (default: detector.json's, else 0.3).")
@click.option("--max-boxes", type=click.IntRange(min=1),
              help="Detectors: boxes per frame at most (default: detector.json's, else 20).")
@click.option("--reference-kernels", is_flag=True,
              help="Run the TFLite reference kernels (slow; bit-exact with the firmware).")
def infer(model_file, source, labels_file, top_k, threads, save_video, edgetpu, detector,
          score_threshold, max_boxes, reference_kernels):
    """Classify frames, or detect objects in them, with a .tflite model (TensorFlow-free);
    one JSON line per frame."""
    from tfuav.runtime import InferenceError, run_inference
    try:
        status = run_inference(model_file, source, labels=labels_file, top_k=top_k,
                               threads=threads, save_video=save_video, edgetpu=edgetpu,
                               detector=detector, score_threshold=score_threshold,
                               max_boxes=max_boxes, reference_kernels=reference_kernels)
    except InferenceError as err:
        raise TfuavError(str(err)) from None
    if status:
        sys.exit(status)


@main.command()
@click.argument("model_file", type=click.Path())
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads; default: the interpreter's choice.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True, help="Timed invokes.")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed invokes first.")
@click.option("--edgetpu", is_flag=True, help="Run on a Coral Edge TPU (needs libedgetpu).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(model_file, threads, runs, warmup, edgetpu, as_json):
    """Latency (p50/p90/p99), FPS and peak memory of a .tflite model on this machine."""
    from tfuav.runtime import InferenceError, benchmark, format_table
    try:
        result = benchmark(model_file, threads=threads, runs=runs, warmup=warmup, edgetpu=edgetpu)
    except InferenceError as err:
        raise TfuavError(str(err)) from None
    click.echo(json.dumps(result) if as_json else format_table(result))
