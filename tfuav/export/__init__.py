"""Packaging per target: `tfuav export` and the export stage of `tfuav build`."""
from pathlib import Path

from tfuav.errors import TfuavError

RUNTIMES = ("tflm", "native")  # the Cortex-M runtimes a firmware package is built for


def check_runtime(runtime, target):
    """TfuavError unless `runtime` is one of RUNTIMES and fits the target's family."""
    if runtime not in RUNTIMES:
        raise TfuavError(f"unknown runtime {runtime!r} (choose from: {', '.join(RUNTIMES)})")
    if runtime == "native" and target.family != "cortex-m":
        raise TfuavError(f"--runtime native is for Cortex-M targets; {target.name} is a "
                         f"{target.family} target")


def model_labels(info, labels=None, detection=None):
    """The class labels for a model (tflite_info of it): the given ones, checked against the
    classes of its first output (a detector's: detection.num_classes), else class_0, ..."""
    shape = info["outputs"][0]["shape"]
    classes = int(shape[-1]) if shape else 1
    if detection is not None:
        classes = detection.num_classes
    if not labels:
        return [f"class_{k}" for k in range(classes)]
    if len(labels) != classes:
        what = "detector has" if detection is not None else "model's first output has"
        raise TfuavError(f"{len(labels)} labels given, the {what} {classes} classes")
    return list(labels)


def export_model_file(model_file, target_name, out_dir=None, name=None, labels_file=None,
                      kernels="reference", golden_count=1, force=False, echo=print,
                      classes=None, detector=False, stride=None, top_k=None,
                      score_threshold=None, runtime="tflm"):
    """Export a user's int8 .tflite for a target board; returns the export summary.
    classes: the labels as a list (instead of labels_file). detector=True packages a detector
    (one output [1, H, W, C + 4]): C is len(classes) or the output's channels - 4, stride
    defaults to the input size over the output grid, top_k / score_threshold to
    tfuav.export.detection's defaults. runtime (Cortex-M): "tflm" (the interpreter) or
    "native" (tfuav's generated C engine)."""
    from tfuav.targets import load_target
    path = Path(model_file)
    if not path.is_file():
        raise TfuavError(f"{path}: no such model file")
    if path.suffix != ".tflite":
        raise TfuavError(f"{path}: expected an int8 .tflite file (convert a Keras model "
                         f"first with `tfuav convert`)")
    labels = _labels(labels_file, classes)
    target = load_target(target_name)
    model_bytes = path.read_bytes()
    detection = _detection(model_bytes, path, target, labels, detector, stride, top_k,
                           score_threshold)
    name = name or path.stem
    out_dir = Path(out_dir) if out_dir else Path("runs") / f"{path.stem}-{target.name}"
    check_runtime(runtime, target)
    if runtime == "native":
        from tfuav.export.native import export_native
        return export_native(model_bytes, target, out_dir, name=name, labels=labels,
                             golden_count=golden_count, force=force, echo=echo,
                             detection=detection)
    if target.family == "cortex-m":
        from tfuav.export.tflm import export_tflm
        return export_tflm(model_bytes, target, out_dir, name=name, labels=labels,
                           golden_count=golden_count, kernels=kernels, force=force, echo=echo,
                           detection=detection)
    if target.family == "rpi":
        from tfuav.export.rpi import export_rpi
        return export_rpi(model_bytes, target, out_dir, name=name, labels=labels, echo=echo,
                          detection=detection)
    if target.family == "coral":
        from tfuav.export.coral import export_coral
        report = export_coral(model_bytes, target, out_dir, name=name, labels=labels,
                              echo=echo)
        return {"folder": str(out_dir), "edgetpu": report}
    raise TfuavError(f"tfuav export has no packaging for {target.family} targets")


def _labels(labels_file, classes):
    """The labels from --labels FILE or --classes a,b,c (not both), or None."""
    if labels_file and classes:
        raise TfuavError("give the class names either with --labels FILE or with --classes, "
                         "not both")
    if classes is not None:
        if isinstance(classes, str):
            classes = classes.split(",")
        labels = [c.strip() for c in classes]
        if not labels or not all(labels):
            raise TfuavError(f"--classes: expected comma-separated class names, got "
                             f"{','.join(labels)!r}")
        return labels
    if not labels_file:
        return None
    labels_path = Path(labels_file)
    if not labels_path.is_file():
        raise TfuavError(f"{labels_path}: no such labels file")
    labels = [ln.strip() for ln in labels_path.read_text().splitlines() if ln.strip()]
    if not labels:
        raise TfuavError(f"{labels_path}: expected one class label per line, found none")
    return labels


def _detection(model_bytes, path, target, labels, detector, stride, top_k, score_threshold):
    """The Detection for --detector (checked against the model), else None."""
    options = {"--stride": stride, "--max-boxes": top_k, "--score-threshold": score_threshold}
    if not detector:
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise TfuavError(f"{', '.join(given)}: for detectors only (add --detector)")
        return None
    if target.family not in ("cortex-m", "rpi"):
        raise TfuavError(f"--detector packages for Cortex-M and Raspberry Pi targets; "
                         f"{target.name} is a {target.family} target")
    from tfuav.convert.inspect_tflite import tflite_info
    from tfuav.export.detection import DEFAULT_SCORE_THRESHOLD, DEFAULT_TOP_K, Detection
    info = tflite_info(model_bytes, source=path)
    try:
        return Detection.for_model(
            info, num_classes=len(labels) if labels else None, stride=stride,
            top_k=DEFAULT_TOP_K if top_k is None else top_k,
            score_threshold=(DEFAULT_SCORE_THRESHOLD if score_threshold is None
                             else score_threshold))
    except TfuavError as err:
        raise TfuavError(f"{path}: {err}") from None
