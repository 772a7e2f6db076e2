"""`tfuav inspect`: one summary dict for a registered model name, a Keras file or a .tflite."""
from pathlib import Path

from tfuav.errors import TfuavError


def describe(ref):
    path = Path(ref)
    if path.suffix.lower() == ".tflite":
        return _describe_tflite(path)
    if path.suffix:
        from tfuav.models.io import load_keras_model
        return _describe_keras(load_keras_model(path), path.stem)
    from tfuav.models import build_model
    return _describe_keras(build_model(ref), ref)


def _describe_keras(model, name):
    from tfuav.models.stats import count_macs, count_params, thop_flops
    return {"name": name, "format": "keras", "input_shape": list(model.input_shape[1:]),
            **count_params(model), "macs": count_macs(model), "thop_flops": thop_flops(model)}


def _describe_tflite(path):
    from tfuav.convert import tflite_info
    if not path.is_file():
        raise TfuavError(f"model file not found: {path}")
    info = tflite_info(path.read_bytes(), source=str(path))
    return {"name": path.stem, "format": "tflite", "input_shape": info["inputs"][0]["shape"][1:],
            # A deployed graph has no trainable parameters; every weight is a constant.
            "params_trainable": None, "params_total": info["params"],
            "macs": info["macs"], "ops": info["ops"], "op_histogram": info["op_histogram"],
            "tensor_types": info["tensor_types"], "size_bytes": info["size_bytes"],
            "inputs": info["inputs"], "outputs": info["outputs"]}
