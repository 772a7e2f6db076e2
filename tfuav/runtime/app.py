"""Classify a stream of frames and print one JSON line per frame: the front end shared by
`python -m tfuav.runtime` (what the Pi / Coral bundle runs) and `tfuav infer`.

Each frame prints {"frame": i, "source": ..., "top": [{"label", "index", "score"}, ...],
"latency_ms": ...}, or {"frame": i, "source": ..., "error": ...} when it could not be read;
latency_ms is the time from the decoded RGB frame to the ranked scores (resize, preprocess,
quantize, invoke, dequantize, top-k), not counting decoding the frame. Scores are the model's
dequantized outputs, unchanged (probabilities if the model ends in a softmax, else logits).
A summary line goes to stderr at the end. Ctrl-C stops the stream, finishes the video being
written, prints the summary and returns exit status 130.
"""
import argparse
import json
import os
import sys
from pathlib import Path

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

    def write(self, image_rgb, top):
        import cv2
        if self.writer is None:
            self._open(image_rgb.shape[1], image_rgb.shape[0])
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
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


def _summary(stats, interrupted):
    done = stats["frames"] - stats["errors"]
    mean = stats["latency_ms"] / done if done else 0.0
    text = (f"{stats['frames']} frames, {stats['errors']} unreadable, "
            f"mean latency {mean:.2f} ms")
    if stats.get("video"):
        text += f", video {stats['video']}"
    return ("interrupted after " if interrupted else "done: ") + text


def run_inference(model, source, labels=None, top_k=3, threads=None, save_video=None,
                  edgetpu=False, out=None, err=None):
    """Classify every frame of `source` with the .tflite `model`; one JSON line per frame to
    `out` (default stdout), the summary to `err` (default stderr). Returns the exit status:
    0, or 130 after Ctrl-C. Raises InferenceError (before any frame) for a missing or bad model,
    labels file or source, or a missing Edge TPU library."""
    out = out or sys.stdout
    err = err or sys.stderr
    if int(top_k) < 1:
        raise InferenceError(f"--top-k must be at least 1, got {top_k}")
    classifier = Classifier(model, num_threads=threads, labels=labels, edgetpu=edgetpu)
    frames = open_source(source)
    video = AnnotatedVideo(save_video, frames.fps or DEFAULT_VIDEO_FPS) if save_video else None
    stats = {"frames": 0, "errors": 0, "latency_ms": 0.0, "video": None}
    interrupted = False
    try:
        for frame in frames:
            record = {"frame": frame.index, "source": frame.source}
            if frame.error is not None:
                record["error"] = frame.error
                stats["errors"] += 1
            else:
                top, ms = classifier.classify_timed(frame.image, top_k)
                record["top"] = top
                record["latency_ms"] = round(ms, 3)
                stats["latency_ms"] += ms
                if video is not None:
                    video.write(frame.image, top)
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


def build_parser(prog=None):
    p = argparse.ArgumentParser(
        prog=prog, description="Classify frames from an image, a folder of images, a video or a "
                               "camera with an int8 (or float) .tflite model; one JSON line per frame.")
    p.add_argument("model", help="the .tflite model")
    p.add_argument("--source", required=True,
                   help="image file, folder of images (sorted by name), video file or camera index")
    p.add_argument("--labels", help="text file, one class label per line")
    p.add_argument("--top-k", type=_positive, default=3, help="classes per frame (default 3)")
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
                             edgetpu=args.edgetpu)
    except InferenceError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # during model loading or opening the source
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
