"""TensorFlow-free inference for the Raspberry Pi / Coral host.

Needs only numpy and ai-edge-litert (or tflite-runtime), plus OpenCV for frame sources and
resizing. Self-contained: it imports nothing from the rest of tfuav, so the Pi bundle can ship a
copy of this folder as its own top-level package. The canonical input preprocessing and
int8/uint8 quantization live here; `tfuav.data.preprocess` and `tfuav.quantization` re-export them.

    from tfuav.runtime import Classifier, Detector, open_source, benchmark
    clf = Classifier("model_int8.tflite", num_threads=2, labels="labels.txt")
    clf.classify(rgb_uint8_image, top_k=3)   # [{"label", "index", "score"}, ...]
    det = Detector.from_sidecar("model_int8.tflite", labels="labels.txt")  # detector.json
    det.detect(rgb_uint8_image)              # [{"label", "class", "score", "x", "y", "w", "h"}]
"""
from .app import main, open_model, run_inference
from .bench import benchmark, format_table, peak_rss_mib
from .detect import decode_centernet, decode_head, decode_head_int8
from .detector import SIDECAR_NAME, Detector, read_sidecar
from .errors import EdgeTpuUnavailableError, InferenceError
from .interpreter import (EDGETPU_LIBRARY, Classifier, TfliteModel, load_edgetpu_delegate,
                          load_labels)
from .preprocess import preprocess
from .quant import dequantize, quantize
from .sources import (IMAGE_EXTENSIONS, Frame, FrameSource, list_images, open_source,
                      read_image_file)

__all__ = ["Classifier", "Detector", "EDGETPU_LIBRARY", "EdgeTpuUnavailableError", "Frame",
           "FrameSource", "IMAGE_EXTENSIONS", "InferenceError", "SIDECAR_NAME", "TfliteModel",
           "benchmark", "decode_centernet", "decode_head", "decode_head_int8", "dequantize",
           "format_table", "list_images", "load_edgetpu_delegate", "load_labels", "main",
           "open_model", "open_source", "peak_rss_mib", "preprocess", "quantize",
           "read_image_file", "read_sidecar", "run_inference"]
