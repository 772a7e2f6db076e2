"""Packaging per target: `tfuav export` and the export stage of `tfuav build`."""
from pathlib import Path

from tfuav.errors import TfuavError


def model_labels(info, labels=None):
    """The class labels for a model (tflite_info of it): the given ones, checked against the
    classes of its first output, else class_0, class_1, ..."""
    shape = info["outputs"][0]["shape"]
    classes = int(shape[-1]) if shape else 1
    if not labels:
        return [f"class_{k}" for k in range(classes)]
    if len(labels) != classes:
        raise TfuavError(f"{len(labels)} labels given, the model's first output has "
                         f"{classes} classes")
    return list(labels)


def export_model_file(model_file, target_name, out_dir=None, name=None, labels_file=None,
                      kernels="reference", golden_count=1, force=False, echo=print):
    """Export a user's int8 .tflite for a target board; returns the export summary."""
    from tfuav.targets import load_target
    path = Path(model_file)
    if not path.is_file():
        raise TfuavError(f"{path}: no such model file")
    if path.suffix != ".tflite":
        raise TfuavError(f"{path}: expected an int8 .tflite file (convert a Keras model "
                         f"first with `tfuav convert`)")
    labels = None
    if labels_file:
        labels_path = Path(labels_file)
        if not labels_path.is_file():
            raise TfuavError(f"{labels_path}: no such labels file")
        labels = [ln.strip() for ln in labels_path.read_text().splitlines() if ln.strip()]
        if not labels:
            raise TfuavError(f"{labels_path}: expected one class label per line, found none")
    target = load_target(target_name)
    name = name or path.stem
    out_dir = Path(out_dir) if out_dir else Path("runs") / f"{path.stem}-{target.name}"
    if target.family == "cortex-m":
        from tfuav.export.tflm import export_tflm
        return export_tflm(path.read_bytes(), target, out_dir, name=name, labels=labels,
                           golden_count=golden_count, kernels=kernels, force=force, echo=echo)
    if target.family == "rpi":
        from tfuav.export.rpi import export_rpi
        return export_rpi(path.read_bytes(), target, out_dir, name=name, labels=labels, echo=echo)
    if target.family == "coral":
        from tfuav.export.coral import export_coral
        report = export_coral(path.read_bytes(), target, out_dir, name=name, labels=labels,
                              echo=echo)
        return {"folder": str(out_dir), "edgetpu": report}
    raise TfuavError(f"tfuav export has no packaging for {target.family} targets")
