"""Golden test vectors: real inputs for the exported model and the outputs TFLM gives for them."""
import numpy as np

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.quantization import quantize


def golden_inputs(model_bytes, count, images_float=None, seed=0):
    """`count` inputs in the model's input dtype and shape. images_float: preprocessed float
    images (e.g. the test split); without them an image-shaped input gets synthetic aerial
    scenes scaled to [0, 1], any other input seeded random values over its float range."""
    spec = tflite_info(model_bytes)["inputs"][0]
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    if images_float is None:
        images_float = _synthetic_images(shape, count, seed)
    images = np.asarray(images_float, dtype=np.float32)[:count]
    # quantize() passes float inputs through unchanged
    return [quantize(img.reshape(shape), spec["scale"], spec["zero_point"], dtype)
            for img in images]


def _synthetic_images(shape, count, seed):
    if len(shape) == 4 and shape[3] in (1, 3):
        from tfuav.byom import representative_images
        from tfuav.data import preprocess
        images = preprocess(representative_images(shape[1], shape[2])[:count])
        if shape[3] == 1:
            images = images.mean(axis=3, keepdims=True)
        return images
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(count,) + shape[1:]).astype(np.float32)
