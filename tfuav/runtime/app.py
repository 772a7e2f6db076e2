"""Run a classifier or a detector on a stream of frames and print one JSON line per frame:
the front end shared by `python -m tfuav.runtime` (what the Pi / Coral bundle runs) and
`tfuav infer`.

A classifier prints {"frame": i, "source": ..., "top": [{"label", "index", "score"}, ...],
"latency_ms": ...}; scores are the model's dequantized outputs, unchanged (probabilities if the
model ends in a softmax, else logits). A detector (a `detector.json` next to the model, or
--detector) prints {"frame": i, "source": ..., "boxes": [{"label", "class", "score", "x", "y",
"w", "h"}, ...], "latency_ms": ...}, boxes in the frame's own pixels, best first. A frame that
could not be read prints {"frame": i, "source": ..., "error": ...}. latency_ms is the time from
the decoded RGB frame to the ranked scores or decoded boxes, not counting decoding the frame.
A summary line goes to stderr at the end. Ctrl-C stops the stream, finishes the video being
written, prints the summary and returns exit status 130.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from .detector import Detector, sidecar_path
from .errors import InferenceError
from .interpreter import Classifier
from .sources import open_source

DEFAULT_VIDEO_FPS = 10.0

EXIT_INTERRUPTED = 130
EXIT_USAGE = 2


class AnnotatedVideo:
    """An annotated copy of the stream (cv2.VideoWriter), written under a temporary name and
    renamed when closed; .avi is written as MJPG, anything else (e.g. .mp4) as mp4v."""

    def __init__(self, path, fps):
        self.path = Path(path)
        self.fps = float(fps)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.writer = None
        self.size = None
        self.frames = 0

    def _open(self, width, height):
        import cv2
        if not self.path.parent.is_dir():
            raise InferenceError(f"folder of --save-video does not exist: {self.path.parent}")
        codec = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*codec), self.fps,
                                      (width, height))
        if not self.writer.isOpened():
            self.writer = None
            raise InferenceError(f"cannot write video {self.path} (codec {codec})")
        self.size = (width, height)

    def write(self, image_rgb, record):
        """Adds a frame annotated with its record: the best class, or the boxes."""
        import cv2
        if self.writer is None:
            self._open(image_rgb.shape[1], image_rgb.shape[0])
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if "boxes" in record:
            draw_boxes(bgr, record["boxes"])
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        top = record.get("top")
        if top is not None:
            draw_label(bgr, f"{top[0]['label']} {top[0]['score']:.2f}" if top else "")
        self.writer.write(bgr)
        self.frames += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.tmp, self.path)


def draw_label(image_bgr, text):
    """Draw `text` in the top-left corner, white on a black box, scaled to the frame width."""
    import cv2
    if not text:
        return image_bgr
    width = image_bgr.shape[1]
    scale = max(0.25, min(1.0, width / 640.0))
    thickness = 1 if scale < 0.6 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, int(4 * scale))
    cv2.rectangle(image_bgr, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(image_bgr, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image_bgr


BOX_COLOUR_BGR = (0, 255, 0)


def draw_boxes(image_bgr, boxes):
    """Draw each box (x, y, w, h in the image's pixels) with its label and score."""
    import cv2
    height, width = image_bgr.shape[:2]
    thickness = max(1, round(min(width, height) / 240))
    scale = max(0.3, min(0.8, width / 1000.0))
    for box in boxes:
        x0, y0 = int(round(box["x"])), int(round(box["y"]))
        x1, y1 = int(round(box["x"] + box["w"])), int(round(box["y"] + box["h"]))
        cv2.rectangle(image_bgr, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), BOX_COLOUR_BGR,
                      thickness)
        text = f"{box['label']} {box['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y0 - base - 1 if y0 - th - base - 1 >= 0 else min(height - 1, y1 + th + 1)
        cv2.putText(image_bgr, text, (x0, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, BOX_COLOUR_BGR,
                    1, cv2.LINE_AA)
    return image_bgr


def _summary(stats, interrupted):
    done = stats["frames"] - stats["errors"]
    mean = stats["latency_ms"] / done if done else 0.0
    text = (f"{stats['frames']} frames, {stats['errors']} unreadable, "
            f"mean latency {mean:.2f} ms")
    if stats.get("boxes") is not None:
        text += f", {stats['boxes']} boxes"
    if stats.get("video"):
        text += f", video {stats['video']}"
    return ("interrupted after " if interrupted else "done: ") + text


def open_model(model, labels=None, threads=None, edgetpu=False, detector=False,
               score_threshold=None, max_boxes=None, reference_kernels=False):
    """A Detector when the model has a detector.json next to it or detector=True (its
    parameters from that file, overridden by score_threshold / max_boxes when given), else a
    Classifier."""
    common = dict(labels=labels, num_threads=threads, edgetpu=edgetpu,
                  reference_kernels=reference_kernels)
    if detector or sidecar_path(model) is not None:
        return Detector.from_sidecar(model, score_threshold=score_threshold,
                                     max_boxes=max_boxes, **common)
    if score_threshold is not None or max_boxes is not None:
        raise InferenceError("--score-threshold and --max-boxes are for detectors: add "
                             "--detector, or put a detector.json next to the model")
    return Classifier(model, **common)


def run_inference(model, source, labels=None, top_k=3, threads=None, save_video=None,
                  edgetpu=False, out=None, err=None, detector=False, score_threshold=None,
                  max_boxes=None, reference_kernels=False):
    """Run the .tflite `model` (a classifier, or a detector: see open_model) on every frame of
    `source`; one JSON line per frame to `out` (default stdout), the summary to `err` (default
    stderr). Returns the exit status: 0, or 130 after Ctrl-C. Raises InferenceError (before any
    frame) for a missing or bad model, labels file, detector.json or source, or a missing Edge
    TPU library."""
    out = out or sys.stdout
    err = err or sys.stderr
    if int(top_k) < 1:
        raise InferenceError(f"--top-k must be at least 1, got {top_k}")
    runner = open_model(model, labels=labels, threads=threads, edgetpu=edgetpu,
                        detector=detector, score_threshold=score_threshold,
                        max_boxes=max_boxes, reference_kernels=reference_kernels)
    detecting = isinstance(runner, Detector)
    frames = open_source(source)
    video = AnnotatedVideo(save_video, frames.fps or DEFAULT_VIDEO_FPS) if save_video else None
    stats = {"frames": 0, "errors": 0, "latency_ms": 0.0, "video": None,
             "boxes": 0 if detecting else None}
    interrupted = False
    try:
        for frame in frames:
            record = {"frame": frame.index, "source": frame.source}
            if frame.error is not None:
                record["error"] = frame.error
                stats["errors"] += 1
            else:
                if detecting:
                    boxes, ms = runner.detect_timed(frame.image)
                    record["boxes"] = boxes
                    stats["boxes"] += len(boxes)
                else:
                    record["top"], ms = runner.classify_timed(frame.image, top_k)
                record["latency_ms"] = round(ms, 3)
                stats["latency_ms"] += ms
                if video is not None:
                    video.write(frame.image, record)
            stats["frames"] += 1
            out.write(json.dumps(record) + "\n")
            out.flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        frames.close()
        if video is not None:
            video.close()
            if video.frames:
                stats["video"] = str(video.path)
    err.write(_summary(stats, interrupted) + "\n")
    err.flush()
    return EXIT_INTERRUPTED if interrupted else 0


def _positive(value):
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _threshold(value):
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError("must be a finite number")
    return number


def build_parser(prog=None):
    p = argparse.ArgumentParser(
        prog=prog, description="Classify frames, or detect objects in them, from an image, a "
                               "folder of images, a video or a camera with an int8 (or float) "
                               ".tflite model; one JSON line per frame.")
    p.add_argument("model", help="the .tflite model")
    p.add_argument("--source", required=True,
                   help="image file, folder of images (sorted by name), video file or camera index")
    p.add_argument("--labels", help="text file, one class label per line")
    p.add_argument("--top-k", type=_positive, default=3,
                   help="classifiers: classes per frame (default 3)")
    p.add_argument("--detector", action="store_true",
                   help="the model is a tfuav detector (automatic when a detector.json is next "
                        "to the model)")
    p.add_argument("--score-threshold", type=_threshold, default=None,
                   help="detectors: keep boxes scoring at least this (default: detector.json's, "
                        "else 0.3)")
    p.add_argument("--max-boxes", type=_positive, default=None,
                   help="detectors: boxes per frame at most (default: detector.json's, else 20)")
    p.add_argument("--reference-kernels", action="store_true",
                   help="run the TFLite reference kernels (slow; bit-exact with the firmware)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="interpreter threads (default: the interpreter's choice)")
    p.add_argument("--save-video", help="write an annotated video (.mp4 or .avi)")
    p.add_argument("--edgetpu", action="store_true",
                   help="run on a Coral Edge TPU (needs libedgetpu and an Edge TPU compiled model)")
    return p


def main(argv=None, prog=None):
    """Module entry point; returns the exit status (2 for a user error, one line on stderr)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run_inference(args.model, args.source, labels=args.labels, top_k=args.top_k,
                             threads=args.threads, save_video=args.save_video,
                             edgetpu=args.edgetpu, detector=args.detector,
                             score_threshold=args.score_threshold, max_boxes=args.max_boxes,
                             reference_kernels=args.reference_kernels)
    except InferenceError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # during model loading or opening the source
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
