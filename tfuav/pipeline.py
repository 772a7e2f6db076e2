"""`tfuav build`: config -> data -> model -> train -> compress -> convert -> validate -> export -> report."""
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tfuav.errors import TfuavError
from tfuav.fileio import atomic_write_bytes

INT8_MODEL = "model_int8.tflite"
GOLDEN_VECTORS = 2  # test images carried into the firmware as golden vectors


class StageClock:
    def __init__(self, echo):
        self.timings = {}
        self.echo = echo

    @contextmanager
    def stage(self, name):
        self.echo(f"[{name}]")
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)


def build(config, target_name, out_dir, resume=False, kernels="reference", force=False,
          echo=print, model_file=None, runtime="tflm"):
    """Runs the whole pipeline; returns the report dict. Raises TfuavError on user errors, when
    the int8 model fails a graph check or the cross-runtime gate, and (for a Cortex-M target)
    when it uses an op the board's runtime lacks or does not fit the board (unless force).

    model_file: start from this trained Keras model instead of training one (the train stage
    then only loads it), e.g. to compress a model built before. runtime: for Cortex-M targets,
    "tflm" (the interpreter's firmware folder) or "native" (tfuav's generated C engine)."""
    from tfuav.data import preprocess
    from tfuav.export import check_runtime
    from tfuav.targets import load_target
    from tfuav.tasks import task_for

    task = task_for(config.model.name)
    target = load_target(target_name)
    check_runtime(runtime, target)  # before minutes of training
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = StageClock(echo)

    with clock.stage("data"):
        dataset = task.load_data(config.data)
        echo(f"  {task.describe(dataset)}")

    with clock.stage("train"):
        if model_file is not None:
            from tfuav.train.loop import load_model
            echo(f"  loading {model_file}")
            model = load_model(model_file)
        else:
            model = task.train(config, dataset, out_dir, resume)

    with clock.stage("compress"):
        model, to_convert, pruning = compress_model(model, dataset, config, task, target,
                                                    kernels, echo)
        if target.family == "coral":
            if config.compress.qat:
                raise TfuavError("the coral target converts the model's Edge TPU form, which has "
                                 "no quantization-aware training path: set compress.qat: false")
            from tfuav.models.registry import coral_form
            echo("  Edge TPU form: the same weights in ops the Edge TPU compiler maps")
            to_convert = coral_form(model, config.model.name)

    with clock.stage("convert"):
        from tfuav.convert import assert_graph_ok, to_int8_tflite, tflite_info
        train_x = dataset.splits["train"].images
        rep = preprocess(train_x[:config.convert.representative_samples])
        tflite = to_int8_tflite(to_convert, rep, float_io=config.convert.float_io)
        try:
            assert_graph_ok(tflite, float_io=config.convert.float_io)
        except TfuavError as err:
            from tfuav.models.registry import get_spec
            plain = get_spec(config.model.name).plain_variant
            if plain is None:
                raise
            raise TfuavError(f"{config.model.name} keeps float ops in its int8 graph, which "
                             f"{target.name} cannot run ({err}); build --model {plain}, the "
                             f"same network in full-integer ops") from None
        info = tflite_info(tflite)

    with clock.stage("validate"):
        from tfuav.validate import cross_validate, make_validation_inputs
        test = dataset.splits["test"]
        inputs = make_validation_inputs(tflite, real_images_float=preprocess(test.images[:4]))
        validation = cross_validate(tflite, inputs)

    with clock.stage("evaluate"):
        metrics = task.evaluate(model, tflite, dataset, out_dir)

    report = build_report(config, target, model, tflite, info, metrics, validation, clock)
    report["task"] = task.name
    if pruning is not None:
        report["channel_pruning"] = pruning
    from tfuav.report import write_report
    if not validation.passed:
        write_report(out_dir, report)
        raise TfuavError(f"int8 model rejected by the cross-runtime check: {validation.summary()}; "
                         f"see {out_dir / 'report.md'}")
    with clock.stage("export"):
        try:
            report.update(export_for_target(tflite, info, target, out_dir, config, dataset, task,
                                            kernels, force, echo, runtime))
        except TfuavError:
            write_report(out_dir, report)
            raise
        atomic_write_bytes(out_dir / INT8_MODEL, tflite)
        if model_file is not None:
            from tfuav.train.loop import save_model
            save_model(model, out_dir / "model.keras")
    report["timings"] = clock.timings
    write_report(out_dir, report)
    echo(f"wrote {out_dir / INT8_MODEL} ({len(tflite):,} bytes) and {out_dir / 'report.md'}")
    if "firmware" in report:
        echo(f"wrote {report['firmware']['folder']} (arena "
             f"{report['firmware']['arena']['arena_bytes']:,} bytes)")
    if "native" in report:
        echo(f"wrote {report['native']['folder']} (scratch "
             f"{report['native']['scratch_bytes']:,} bytes)")
    return report


def export_for_target(tflite, info, target, out_dir, config, dataset, task, kernels, force, echo,
                      runtime="tflm"):
    """The export stage: {report key: summary} for the target's family."""
    from tfuav.data import preprocess
    extra = task.export_args(info)
    labels = dataset.class_names
    if runtime == "native":
        from tfuav.export.native import export_native
        test = dataset.splits["test"]
        return {"native": export_native(
            tflite, target, out_dir, name=config.model.name, labels=labels,
            golden_images=preprocess(test.images[:GOLDEN_VECTORS]), golden_count=GOLDEN_VECTORS,
            force=force, echo=echo, **extra)}
    if target.family == "cortex-m":
        from tfuav.export.tflm import export_tflm
        test = dataset.splits["test"]
        return {"firmware": export_tflm(
            tflite, target, out_dir, name=config.model.name, labels=labels,
            golden_images=preprocess(test.images[:GOLDEN_VECTORS]), golden_count=GOLDEN_VECTORS,
            kernels=kernels, force=force, echo=echo, **extra)}
    if target.family == "rpi":
        from tfuav.export.rpi import export_rpi
        return {"bundle": export_rpi(tflite, target, out_dir, name=config.model.name,
                                     labels=labels, echo=echo, **extra)}
    if target.family == "coral":
        if extra:
            raise TfuavError(f"the coral target has no {task.name} path yet; use --target rpi "
                             f"for the host bundle")
        from tfuav.export.coral import export_coral
        return {"edgetpu": export_coral(tflite, target, out_dir, name=config.model.name,
                                        labels=labels, echo=echo)}
    return {}


def compress_model(model, dataset, config, task, target, kernels, echo):
    """Returns the float model (channel- and/or magnitude-pruned if asked), the model to
    convert (its QAT version when quantization-aware training is on) and the channel-pruning
    report (None when channel pruning is off)."""
    c = config.compress
    pruning = None
    if task.name != "classification" and (c.prune_sparsity > 0 or c.qat):
        raise TfuavError(f"magnitude pruning and quantization-aware training are for "
                         f"classifiers; a {task.name} model supports compress.prune_channels")
    if c.prune_channels:
        model, pruning = prune_model_channels(model, dataset, config, task, target, kernels, echo)
    if c.lowrank_energy:
        from tfuav.compress import factorize_pointwise
        from tfuav.models.stats import count_macs
        before = count_macs(model)
        model = factorize_pointwise(model, energy=c.lowrank_energy)
        echo(f"  low-rank 1x1 convolutions ({c.lowrank_energy:.0%} of the energy): MACs "
             f"{before:,} -> {count_macs(model):,}")
        if c.finetune_epochs:
            model = task.fine_tune(model, dataset, config, c.finetune_epochs)
    if c.prune_sparsity > 0:
        from tfuav.compress import prune_magnitude
        echo(f"  magnitude pruning to {c.prune_sparsity:.0%} sparsity, {c.prune_epochs} epochs")
        model = prune_magnitude(model, dataset, config.train, c.prune_sparsity, c.prune_epochs)
    if c.qat:
        from tfuav.compress import quantize_aware
        echo(f"  quantization-aware training, {c.qat_epochs} epochs")
        return model, quantize_aware(model, dataset, config.train, c.qat_epochs), pruning
    echo("  post-training int8 quantization (representative data from the train split)")
    return model, model, pruning


def prune_model_channels(model, dataset, config, task, target, kernels, echo):
    """Sparse training (network slimming), channel surgery to the budget, fine-tuning."""
    from tfuav.compress import (add_slimming_penalty, format_table, prune_channels,
                                remove_slimming_penalty)
    from tfuav.data import preprocess
    c = config.compress
    if c.slimming_epochs:
        echo(f"  sparse training: L1 {c.slimming_l1:g} on BatchNorm and connection scales, "
             f"{c.slimming_epochs} epochs")
        sparse = task.fine_tune(add_slimming_penalty(model, c.slimming_l1), dataset, config,
                                c.slimming_epochs)
        model = remove_slimming_penalty(sparse)
    budget = (f"{c.budget_latency_ms:g} ms estimated on {target.name}"
              if c.budget_latency_ms is not None else f"{c.budget_macs:.0%} of the MACs")
    echo(f"  channel pruning to {budget}")
    samples = preprocess(dataset.splits["train"].images[:config.convert.representative_samples])
    model, report = prune_channels(model, samples, budget_macs=c.budget_macs,
                                   budget_latency_ms=c.budget_latency_ms,
                                   target=target if target.family == "cortex-m" else None,
                                   kernels=kernels)
    echo(f"  MACs {report['macs_before']:,} -> {report['macs_after']:,} "
         f"({report['macs_ratio']:.0%}), params {report['params_before']:,} -> "
         f"{report['params_after']:,}")
    echo("\n".join("    " + line for line in format_table(report["table"]).splitlines()))
    if c.finetune_epochs:
        echo(f"  fine-tuning the pruned model, {c.finetune_epochs} epochs")
        model = task.fine_tune(model, dataset, config, c.finetune_epochs)
    return model, report


def evaluate_keras(model, split, class_names):
    from tfuav.data import preprocess
    from tfuav.eval import classification_metrics
    logits = model.predict(preprocess(split.images), batch_size=64, verbose=0)
    return classification_metrics(split.labels, logits, class_names)


def evaluate_tflite(tflite, split, class_names):
    from ai_edge_litert import interpreter as litert

    from tfuav.data import preprocess
    from tfuav.eval import classification_metrics
    from tfuav.quantization import dequantize, quantize
    interp = litert.Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = preprocess(split.images)
    logits = []
    for image in x:
        interp.set_tensor(inp["index"], quantize(image[None], *inp["quantization"], inp["dtype"]))
        interp.invoke()
        logits.append(dequantize(interp.get_tensor(out["index"]), *out["quantization"])[0])
    return classification_metrics(split.labels, np.stack(logits), class_names)


def build_report(config, target, model, tflite, info, metrics, validation, clock):
    from tfuav.compress import sparsity_report
    from tfuav.models.stats import count_params, thop_flops
    params = count_params(model)
    return {
        "model": config.model.name,
        "target": target.name,
        "input_shape": list(model.input_shape[1:]),
        "params_trainable": params["params_trainable"],
        "params_total": params["params_total"],
        "macs": info["macs"],
        "thop_flops": thop_flops(model),
        "float_size_bytes": 4 * params["params_total"],  # float32 weights
        "int8_size_bytes": len(tflite),
        "ops": info["ops"],
        "op_histogram": info["op_histogram"],
        "tensor_types": info["tensor_types"],
        "sparsity": sparsity_report(model)["overall"],
        "metrics": metrics,
        "validation": validation.to_dict(),
        "timings": dict(clock.timings),
        "config": config.to_dict(),
    }
