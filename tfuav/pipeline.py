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
          echo=print):
    """Runs the whole pipeline; returns the report dict. Raises TfuavError on user errors, when
    the int8 model fails a graph check or the cross-runtime gate, and (for a Cortex-M target)
    when it uses an op the board's runtime lacks or does not fit the board (unless force)."""
    from tfuav.data import load_dataset, preprocess
    from tfuav.targets import load_target

    target = load_target(target_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = StageClock(echo)

    with clock.stage("data"):
        dataset = load_dataset(config.data)
        echo(f"  {dataset.source}: {len(dataset.class_names)} classes, "
             + ", ".join(f"{k} {len(v.labels)}" for k, v in dataset.splits.items()))

    with clock.stage("train"):
        from tfuav.train import train_model
        result = train_model(config.model.name, dataset, config.train, out_dir,
                             image_size=config.data.image_size, resume=resume,
                             augment=config.data.augment)
        model = result.model

    with clock.stage("compress"):
        model, to_convert = compress_model(model, dataset, config, echo)
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
        assert_graph_ok(tflite, float_io=config.convert.float_io)
        info = tflite_info(tflite)

    with clock.stage("validate"):
        from tfuav.validate import cross_validate, make_validation_inputs
        test = dataset.splits["test"]
        inputs = make_validation_inputs(tflite, real_images_float=preprocess(test.images[:4]))
        validation = cross_validate(tflite, inputs)

    with clock.stage("evaluate"):
        metrics = {"float": evaluate_keras(model, test, dataset.class_names),
                   "int8": evaluate_tflite(tflite, test, dataset.class_names)}

    report = build_report(config, target, model, tflite, info, metrics, validation, clock)
    from tfuav.report import write_report
    if not validation.passed:
        write_report(out_dir, report)
        raise TfuavError(f"int8 model rejected by the cross-runtime check: {validation.summary()}; "
                         f"see {out_dir / 'report.md'}")
    with clock.stage("export"):
        try:
            if target.family == "cortex-m":
                from tfuav.export.tflm import export_tflm
                report["firmware"] = export_tflm(
                    tflite, target, out_dir, name=config.model.name, labels=dataset.class_names,
                    golden_images=preprocess(test.images[:GOLDEN_VECTORS]),
                    golden_count=GOLDEN_VECTORS, kernels=kernels, force=force, echo=echo)
            elif target.family == "rpi":
                from tfuav.export.rpi import export_rpi
                report["bundle"] = export_rpi(tflite, target, out_dir, name=config.model.name,
                                              labels=dataset.class_names, echo=echo)
            elif target.family == "coral":
                from tfuav.export.coral import export_coral
                report["edgetpu"] = export_coral(tflite, target, out_dir, name=config.model.name,
                                                 labels=dataset.class_names, echo=echo)
        except TfuavError:
            write_report(out_dir, report)
            raise
        atomic_write_bytes(out_dir / INT8_MODEL, tflite)
    report["timings"] = clock.timings
    write_report(out_dir, report)
    echo(f"wrote {out_dir / INT8_MODEL} ({len(tflite):,} bytes) and {out_dir / 'report.md'}")
    if "firmware" in report:
        echo(f"wrote {report['firmware']['folder']} (arena "
             f"{report['firmware']['arena']['arena_bytes']:,} bytes)")
    return report


def compress_model(model, dataset, config, echo):
    """Returns the float model (pruned if asked) and the model to convert (its QAT version
    when quantization-aware training is on)."""
    c = config.compress
    if c.prune_sparsity > 0:
        from tfuav.compress import prune_magnitude
        echo(f"  magnitude pruning to {c.prune_sparsity:.0%} sparsity, {c.prune_epochs} epochs")
        model = prune_magnitude(model, dataset, config.train, c.prune_sparsity, c.prune_epochs)
    if c.qat:
        from tfuav.compress import quantize_aware
        echo(f"  quantization-aware training, {c.qat_epochs} epochs")
        return model, quantize_aware(model, dataset, config.train, c.qat_epochs)
    echo("  post-training int8 quantization (representative data from the train split)")
    return model, model


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
