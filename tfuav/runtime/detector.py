"""Object detection on the Pi / Coral host: a tfuav detector's .tflite and its decoding.

A detector has one output [1, H, W, C + 4] (see detect.py). Its decoding parameters come from
`detector.json` next to the model (written by `tfuav export --detector`) or from arguments:

    {"format": "tfuav-detector", "num_classes": 4, "stride": 4, "top_k": 20,
     "score_threshold": 0.3}

Without them, num_classes is the output's channels - 4 and stride the input size over the
output grid.
"""
import json
import math
import time
from pathlib import Path

import numpy as np

from .detect import decode_head, decode_head_int8
from .errors import InferenceError
from .interpreter import TfliteModel

SIDECAR_NAME = "detector.json"
SIDECAR_FORMAT = "tfuav-detector"
DEFAULT_SCORE_THRESHOLD = 0.3
DEFAULT_MAX_BOXES = 20
# Box coordinates in the JSON records: hundredths of a pixel.
COORDINATE_DECIMALS = 2


def sidecar_path(model_path):
    """The detector.json that belongs to a model (next to it), or None."""
    path = Path(model_path).parent / SIDECAR_NAME
    return path if path.is_file() else None


def read_sidecar(path):
    """{num_classes, stride, top_k, score_threshold} from a detector.json; InferenceError
    (one line naming the file and the field) when it is malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InferenceError(f"cannot read detector file {path}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise InferenceError(f"{path}: expected a JSON object with \"format\": "
                             f"\"{SIDECAR_FORMAT}\"")
    params = {}
    for field, kind in (("num_classes", int), ("stride", int), ("top_k", int),
                        ("score_threshold", float)):
        value = data.get(field)
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 1
              if kind is int else isinstance(value, (int, float))
              and not isinstance(value, bool) and math.isfinite(value))
        if not ok:
            what = "an integer >= 1" if kind is int else "a number"
            raise InferenceError(f"{path}: field {field!r} must be {what}, got {value!r}")
        params[field] = kind(value)
    return params


class Detector(TfliteModel):
    """A tfuav detector on a .tflite model: detect(image) runs prepare (the same input
    pipeline as the Classifier), invoke, then decodes the output: peaks of the class heatmap,
    at most max_boxes, scores >= score_threshold, boxes scaled to the image's own pixels.

    An integer output is decoded on its integers (decode_head_int8, as the firmware does), a
    float one with decode_head. labels: a list or a labels file; num_classes and stride
    default to what the model's shapes say, and are checked against them.
    """

    KIND = "a detector"

    def __init__(self, model_path, num_classes=None, stride=None,
                 score_threshold=DEFAULT_SCORE_THRESHOLD, max_boxes=DEFAULT_MAX_BOXES,
                 labels=None, num_threads=None, edgetpu=False, reference_kernels=False):
        super().__init__(model_path, num_threads=num_threads, labels=labels, edgetpu=edgetpu,
                         reference_kernels=reference_kernels)
        shape = tuple(int(d) for d in self.output["shape"])
        outputs = len(self.interpreter.get_output_details())
        if outputs != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] < 5:
            raise InferenceError(f"model {self.model_path}: a detector has one output "
                                 f"[1, H, W, classes + 4], this one has {outputs} output(s), "
                                 f"the first {list(shape)}")
        self.grid = shape[1], shape[2]
        self.num_classes = shape[3] - 4 if num_classes is None else int(num_classes)
        if self.num_classes != shape[3] - 4:
            raise InferenceError(f"model {self.model_path}: output {list(shape)} does not match "
                                 f"[1, H, W, {self.num_classes} + 4] for {self.num_classes} "
                                 f"classes")
        height, width = self.input_size
        self.stride = height // self.grid[0] if stride is None else int(stride)
        if (height, width) != (self.grid[0] * self.stride, self.grid[1] * self.stride):
            raise InferenceError(f"model {self.model_path}: input {height}x{width} is not the "
                                 f"output grid {self.grid[0]}x{self.grid[1]} times stride "
                                 f"{self.stride}")
        if self.labels is not None and len(self.labels) != self.num_classes:
            raise InferenceError(f"{len(self.labels)} labels for a detector of "
                                 f"{self.num_classes} classes")
        if not math.isfinite(float(score_threshold)):
            raise InferenceError(f"the score threshold must be a finite number, got "
                                 f"{score_threshold}")
        if int(max_boxes) < 1:
            raise InferenceError(f"the number of boxes must be at least 1, got {max_boxes}")
        self.score_threshold = float(score_threshold)
        self.max_boxes = int(max_boxes)

    @classmethod
    def from_sidecar(cls, model_path, sidecar=None, score_threshold=None, max_boxes=None,
                     **kwargs):
        """A Detector with the parameters of `sidecar` (default: the detector.json next to the
        model); score_threshold / max_boxes, when given, override the file's."""
        sidecar = sidecar or sidecar_path(model_path)
        params = read_sidecar(sidecar) if sidecar else {}
        return cls(model_path, num_classes=params.get("num_classes"),
                   stride=params.get("stride"),
                   score_threshold=(score_threshold if score_threshold is not None
                                    else params.get("score_threshold", DEFAULT_SCORE_THRESHOLD)),
                   max_boxes=(max_boxes if max_boxes is not None
                              else params.get("top_k", DEFAULT_MAX_BOXES)),
                   **kwargs)

    def boxes(self, raw_output):
        """Raw output -> (boxes float32 [N, 4] as x, y, w, h in model-input pixels, scores [N],
        classes [N]), best first."""
        raw_output = np.asarray(raw_output)
        if np.issubdtype(raw_output.dtype, np.integer):
            scale, zero_point = self.output["quantization"]
            return decode_head_int8(raw_output, scale, zero_point, self.num_classes,
                                    self.stride, top_k=self.max_boxes,
                                    score_threshold=self.score_threshold)
        return decode_head(raw_output, self.num_classes, self.stride, top_k=self.max_boxes,
                           score_threshold=self.score_threshold)

    def detect(self, image):
        """RGB uint8 image -> [{"label", "class", "score", "x", "y", "w", "h"}], best first,
        boxes in the image's pixels (x, y: top-left corner)."""
        image = np.asarray(image)
        if image.ndim != 3:
            raise InferenceError(f"expected an HxWxC image, got shape {image.shape}")
        boxes, scores, classes = self.boxes(self.invoke(self.prepare(image)))
        height, width = self.input_size
        sx, sy = image.shape[1] / width, image.shape[0] / height
        found = []
        for (x, y, w, h), score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist()):
            found.append({"label": self.label(cls), "class": cls, "score": score,
                          "x": round(x * sx, COORDINATE_DECIMALS),
                          "y": round(y * sy, COORDINATE_DECIMALS),
                          "w": round(w * sx, COORDINATE_DECIMALS),
                          "h": round(h * sy, COORDINATE_DECIMALS)})
        return found

    def detect_timed(self, image):
        """(boxes, milliseconds from resize to decoded boxes)."""
        start = time.perf_counter()
        found = self.detect(image)
        return found, (time.perf_counter() - start) * 1000.0

    def describe(self):
        return {"model": str(self.model_path), "input_shape": list(self.input_shape),
                "input_dtype": self.input_dtype.name, "output_dtype": self.output_dtype.name,
                "num_classes": self.num_classes, "stride": self.stride,
                "score_threshold": self.score_threshold, "max_boxes": self.max_boxes,
                "threads": self.num_threads, "edgetpu": self.edgetpu}
