"""What the exporters need to know about a detector: its output head and how to decode it.

A tfuav detector has one output tensor [1, H, W, num_classes + 4] on a grid `stride` times
smaller than its input, every channel a sigmoid: the class heatmap, the box width and height
as fractions of the input size, the centre's sub-cell offset (see tfuav.runtime.detect).
"""
import dataclasses
import math

import numpy as np

from tfuav.errors import TfuavError

DEFAULT_TOP_K = 20
DEFAULT_SCORE_THRESHOLD = 0.3


@dataclasses.dataclass(frozen=True)
class Detection:
    """The decoding parameters of a detector: classes, stride (input pixels per output
    cell), at most top_k boxes per image, scores >= score_threshold."""
    num_classes: int
    stride: int = 4
    top_k: int = DEFAULT_TOP_K
    score_threshold: float = DEFAULT_SCORE_THRESHOLD

    def __post_init__(self):
        for field in ("num_classes", "stride", "top_k"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TfuavError(f"detection {field} must be an integer >= 1, got {value!r}")
        threshold = self.score_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not math.isfinite(threshold):
            raise TfuavError(f"detection score_threshold must be a finite number, got "
                             f"{threshold!r}")

    @classmethod
    def for_model(cls, info, num_classes=None, stride=None, top_k=DEFAULT_TOP_K,
                  score_threshold=DEFAULT_SCORE_THRESHOLD):
        """The detection of a model (tflite_info of it): num_classes defaults to its output
        channels - 4, stride to its input size over its output grid; both are checked."""
        out = _single_output(info)
        if num_classes is None:
            num_classes = int(out["shape"][-1]) - 4 if len(out["shape"]) == 4 else 0
            if num_classes < 1:
                raise TfuavError(f"detector output {_shape_text(out)} is not [1, H, W, C + 4] "
                                 f"with C >= 1 classes")
        if stride is None:
            stride = _inferred_stride(info, out)
        detection = cls(num_classes, stride, top_k, score_threshold)
        detection.grid(info)
        return detection

    def grid(self, info):
        """(H, W) of the model's output grid; TfuavError (one line) when the model's output
        is not [1, H, W, num_classes + 4] or its input is not (H x W) * stride."""
        out = _single_output(info)
        shape = list(out["shape"])
        expected = f"[1, H, W, {self.num_classes} + 4]"
        if len(shape) != 4 or shape[0] != 1 or shape[-1] != self.num_classes + 4:
            raise TfuavError(f"detector output {_shape_text(out)} does not match {expected} "
                             f"for {self.num_classes} classes")
        h, w = shape[1], shape[2]
        in_shape = list(info["inputs"][0]["shape"])
        if len(in_shape) != 4 or in_shape[1:3] != [h * self.stride, w * self.stride]:
            raise TfuavError(f"detector input {in_shape} is not the output grid {h}x{w} times "
                             f"stride {self.stride} ([1, {h * self.stride}, "
                             f"{w * self.stride}, channels])")
        return h, w

    def sidecar(self):
        """The decoding parameters as the runtime's detector.json holds them."""
        from tfuav.runtime.detector import SIDECAR_FORMAT
        return {"format": SIDECAR_FORMAT, "num_classes": self.num_classes,
                "stride": self.stride, "top_k": self.top_k,
                "score_threshold": float(self.score_threshold)}

    def c_defines(self, info):
        """The MODEL_DETECT_* defines the firmware's decoder is configured with."""
        h, w = self.grid(info)
        return ("// Detector: the output [1, H, W, C + 4] is decoded by tfuav_detect.c (boxes in\n"
                "// input pixels, best first, at most TOP_K with scores >= SCORE_THRESHOLD).\n"
                f"#define MODEL_DETECT_NUM_CLASSES {self.num_classes}\n"
                f"#define MODEL_DETECT_GRID_HEIGHT {h}\n"
                f"#define MODEL_DETECT_GRID_WIDTH {w}\n"
                f"#define MODEL_DETECT_STRIDE {self.stride}\n"
                f"#define MODEL_DETECT_TOP_K {self.top_k}\n"
                f"#define MODEL_DETECT_SCORE_THRESHOLD {c_float(self.score_threshold)}\n\n")

    def to_dict(self):
        return dataclasses.asdict(self)


def c_float(value):
    """A float32 as a C literal that reads back as exactly that float."""
    return f"{float(np.float32(value))!r}f"


def _single_output(info):
    outputs = info["outputs"]
    if len(outputs) != 1:
        raise TfuavError(f"a detector has one output tensor [1, H, W, C + 4]; the model has "
                         f"{len(outputs)}")
    return outputs[0]


def _shape_text(spec):
    return "[" + ", ".join(str(d) for d in spec["shape"]) + "]"


def _inferred_stride(info, out):
    in_shape, out_shape = list(info["inputs"][0]["shape"]), list(out["shape"])
    if len(in_shape) != 4 or len(out_shape) != 4 or min(out_shape[1:3]) < 1 \
            or in_shape[1] % out_shape[1]:
        raise TfuavError(f"detector output {_shape_text(out)} is not a [1, H, W, C + 4] grid "
                         f"over the input {in_shape}")
    return in_shape[1] // out_shape[1]
