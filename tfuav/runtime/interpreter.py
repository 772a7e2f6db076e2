"""The TFLite interpreter, wrapped for image models on the Pi / Coral host: TfliteModel (load,
input pipeline, invoke) and the Classifier on top of it (the Detector is in detector.py).

Imports only numpy at module level; the interpreter comes from ai-edge-litert
(``ai_edge_litert.interpreter``) or, where that is what is installed, from ``tflite_runtime``,
and OpenCV is loaded only when an image has to be resized.
"""
import ctypes
import sys
import time
from pathlib import Path

import numpy as np

from .errors import EdgeTpuUnavailableError, InferenceError
from .preprocess import preprocess
from .quant import dequantize, quantize

EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib",
                   "win32": "edgetpu.dll"}.get(sys.platform, "libedgetpu.so.1")
EDGETPU_INSTALL_HINT = ("install it with `sudo apt-get install libedgetpu1-std` from the Coral "
                        "apt repository (https://coral.ai/software/#debian-packages)")


def _litert():
    """The interpreter module: ai_edge_litert first, tflite_runtime as the fallback."""
    try:
        from ai_edge_litert import interpreter as module
    except ImportError:
        try:
            from tflite_runtime import interpreter as module
        except ImportError:
            raise InferenceError("no TFLite interpreter installed: `pip install ai-edge-litert` "
                                 "(or tflite-runtime)") from None
    return module


def load_edgetpu_delegate(library=EDGETPU_LIBRARY):
    """The Edge TPU delegate; EdgeTpuUnavailableError (one line) when libedgetpu is missing."""
    try:
        # Probe with ctypes first: a failed load_delegate leaves a half-built object behind
        # whose destructor prints a traceback on garbage collection.
        ctypes.CDLL(library)
    except OSError:
        raise EdgeTpuUnavailableError(
            f"Edge TPU library {library} not found: {EDGETPU_INSTALL_HINT}") from None
    module = _litert()
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        return module.load_delegate(library)
    except (OSError, ValueError, RuntimeError) as err:
        raise EdgeTpuUnavailableError(
            f"Edge TPU delegate {library} failed to load ({err}); is the Coral device plugged "
            f"in? {EDGETPU_INSTALL_HINT}") from None
    finally:
        import gc
        gc.collect()
        sys.unraisablehook = hook


def load_labels(path):
    """Class names, one per line (blank lines at the end ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InferenceError(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InferenceError(f"cannot read labels file {path}: {err}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


class TfliteModel:
    """An image model on a .tflite file (int8, uint8 or float input and output): loading, the
    exact input pipeline of training and conversion, invoke.

    prepare(image): RGB uint8 image -> (cv2.resize with INTER_AREA to the model's input height
    and width, only when the image has another size) -> preprocess (images / 255.0, float32)
    -> quantize with the input tensor's own scale and zero point (int8/uint8 inputs).

    num_threads (None: the interpreter's default) sets the CPU threads of the built-in kernels
    and of XNNPACK, which the interpreter applies by default to float and int8 graphs.
    edgetpu=True adds the Edge TPU delegate (the model must be compiled for the Edge TPU);
    EdgeTpuUnavailableError says how to install libedgetpu when it is missing.
    reference_kernels=True runs the TFLite reference kernels instead (no XNNPACK): slower, and
    bit for bit what the firmware's TFLM computes.
    """

    KIND = "an image model"

    def __init__(self, model_path, num_threads=None, labels=None, edgetpu=False,
                 reference_kernels=False):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise InferenceError(f"model not found: {self.model_path}")
        self.num_threads = num_threads
        self.edgetpu = bool(edgetpu)
        self.reference_kernels = bool(reference_kernels)
        module = _litert()
        delegates = [load_edgetpu_delegate()] if edgetpu else None
        options = {}
        if reference_kernels:
            options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_REF
        try:
            self.interpreter = module.Interpreter(model_path=str(self.model_path),
                                                  num_threads=num_threads,
                                                  experimental_delegates=delegates, **options)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InferenceError(f"cannot load model {self.model_path}: {first}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise InferenceError(f"model {self.model_path} has {len(inputs)} inputs; "
                                 f"{self.KIND} has one")
        self.input = inputs[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.input["shape"])
        if len(shape) != 4:
            raise InferenceError(f"model {self.model_path} input has shape {shape}; "
                                 f"expected (1, height, width, channels)")
        self.input_shape = shape
        if labels is not None and not isinstance(labels, (list, tuple)):
            labels = load_labels(labels)
        self.labels = list(labels) if labels is not None else None

    # --- properties -----------------------------------------------------------------------
    @property
    def input_size(self):
        """(height, width) of the model input."""
        return self.input_shape[1], self.input_shape[2]

    @property
    def input_dtype(self):
        return np.dtype(self.input["dtype"])

    @property
    def output_dtype(self):
        return np.dtype(self.output["dtype"])

    def label(self, index):
        if self.labels is not None and 0 <= index < len(self.labels):
            return self.labels[index]
        return str(index)

    # --- the pipeline, step by step --------------------------------------------------------
    def resize(self, image):
        """RGB uint8 HxWx3 -> the model's height x width (cv2.INTER_AREA), unchanged if equal."""
        image = np.asarray(image)
        if image.ndim != 3:
            raise InferenceError(f"expected an HxWxC image, got shape {image.shape}")
        height, width = self.input_size
        if image.shape[:2] != (height, width):
            import cv2
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return image

    def prepare(self, image):
        """RGB uint8 image -> the input tensor (1, H, W, C) in the model's input dtype."""
        image = self.resize(image)
        x = preprocess(image)
        channels = self.input_shape[3]
        if channels == 1 and x.shape[-1] != 1:
            x = x.mean(axis=-1, keepdims=True, dtype=np.float32)
        elif x.shape[-1] != channels:
            raise InferenceError(f"image has {x.shape[-1]} channels, the model wants {channels}")
        scale, zero_point = self.input["quantization"]
        return np.ascontiguousarray(quantize(x[None], scale, zero_point, self.input_dtype))

    def invoke(self, tensor):
        """Run the model on a prepared input tensor; returns the raw first output (a copy)."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()


class Classifier(TfliteModel):
    """An image classifier: classify(image) runs prepare, invoke, dequantizes the first output
    with its scale and zero point and ranks the scores (no softmax is applied: a model that
    ends in a softmax reports probabilities, one that ends in logits reports logits)."""

    KIND = "an image classifier"

    def __init__(self, model_path, num_threads=None, labels=None, edgetpu=False,
                 reference_kernels=False):
        super().__init__(model_path, num_threads=num_threads, labels=labels, edgetpu=edgetpu,
                         reference_kernels=reference_kernels)
        self.num_classes = int(np.prod(self.output["shape"]))

    def scores(self, raw_output):
        """Raw output -> float32 scores (dequantized with the output's scale and zero point)."""
        scale, zero_point = self.output["quantization"]
        return dequantize(raw_output, scale, zero_point).reshape(-1)

    def top_k(self, scores, k=3):
        """[{"label", "index", "score"}] for the k highest scores, best first (ties: lower index)."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        k = max(1, min(int(k), scores.size))
        order = np.argsort(-scores, kind="stable")[:k]
        return [{"label": self.label(int(i)), "index": int(i), "score": float(scores[i])}
                for i in order]

    def classify(self, image, top_k=3):
        """RGB uint8 image -> the top-k classes, best first."""
        return self.top_k(self.scores(self.invoke(self.prepare(image))), top_k)

    def classify_timed(self, image, top_k=3):
        """(top-k classes, milliseconds from resize to ranked scores)."""
        start = time.perf_counter()
        top = self.classify(image, top_k)
        return top, (time.perf_counter() - start) * 1000.0

    def describe(self):
        return {"model": str(self.model_path), "input_shape": list(self.input_shape),
                "input_dtype": self.input_dtype.name, "output_dtype": self.output_dtype.name,
                "num_classes": self.num_classes, "threads": self.num_threads,
                "edgetpu": self.edgetpu}
