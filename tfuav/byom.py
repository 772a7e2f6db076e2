"""Bring your own model: `tfuav convert` turns a user's Keras file into a checked int8 .tflite."""
import time
from pathlib import Path

from tfuav.errors import TfuavError
from tfuav.fileio import atomic_write_bytes, atomic_write_json

REPRESENTATIVE_SAMPLES = 64


def representative_images(height, width, data_dir=None):
    """uint8 images at the model's input size: the user's folder, else the synthetic scenes."""
    import cv2

    from tfuav.config import DataConfig
    from tfuav.data import generate_emergency_scenes, load_dataset
    if data_dir:
        dataset = load_dataset(DataConfig(path=str(data_dir), image_size=max(height, width)))
        images = dataset.splits["train"].images[:REPRESENTATIVE_SAMPLES]
    else:
        images, _, _ = generate_emergency_scenes(REPRESENTATIVE_SAMPLES // 4, max(height, width), seed=0)
    if images.shape[1:3] != (height, width):
        images = [cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in images]
    import numpy as np
    return np.asarray(images, dtype=np.uint8)


def convert_keras_file(model_file, out_dir, data_dir=None, float_io=False, echo=print):
    from tfuav.convert import assert_graph_ok, tflite_info, to_int8_tflite
    from tfuav.data import preprocess
    from tfuav.models.io import load_keras_model
    from tfuav.models.stats import count_macs, count_params
    from tfuav.validate import cross_validate, make_validation_inputs

    timings = {}
    start = time.perf_counter()
    model = load_keras_model(model_file)
    shape = model.input_shape
    if len(shape) != 4 or shape[3] != 3 or None in shape[1:3]:
        raise TfuavError(f"{model_file}: expected one image input of shape (H, W, 3), got {shape[1:]}")
    images = representative_images(shape[1], shape[2], data_dir)
    timings["load"] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    tflite = to_int8_tflite(model, preprocess(images), float_io=float_io)
    assert_graph_ok(tflite, float_io=float_io)
    info = tflite_info(tflite)
    timings["convert"] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    validation = cross_validate(tflite, make_validation_inputs(
        tflite, real_images_float=preprocess(images[:4])))
    timings["validate"] = round(time.perf_counter() - start, 2)

    out_dir = Path(out_dir)
    report = {"model": Path(model_file).stem, "target": None, **count_params(model),
              "macs": info["macs"], "keras_macs": count_macs(model),
              "int8_size_bytes": len(tflite), "ops": info["ops"],
              "op_histogram": info["op_histogram"], "tensor_types": info["tensor_types"],
              "metrics": {"float": None, "int8": None}, "validation": validation.to_dict(),
              "timings": timings}
    atomic_write_json(out_dir / "report.json", report)
    if not validation.passed:
        raise TfuavError(f"int8 model rejected by the cross-runtime check: {validation.summary()}; "
                         f"see {out_dir / 'report.json'}")
    atomic_write_bytes(out_dir / "model_int8.tflite", tflite)
    echo(f"wrote {out_dir / 'model_int8.tflite'} ({len(tflite):,} bytes); "
         f"TFLM and TFLite reference agree (max {validation.max_abs_diff} LSB)")
    return report
