"""Frame sources through OpenCV: an image file, a folder of images, a video file or a camera.

open_source(spec) returns a FrameSource, an iterable of Frame records. Images come out as RGB
uint8 HxWx3.
A file or frame that cannot be decoded becomes a Frame with `error` set (and no image), and the
stream goes on; the end of a video or folder ends the iteration.
"""
import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InferenceError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# Consecutive failed reads after which a video or camera is taken as ended.
MAX_FAILED_READS = 3


@dataclasses.dataclass
class Frame:
    index: int                      # 0-based position in the stream
    source: str                     # image path, video path or "camera:N"
    image: Optional[np.ndarray]     # RGB uint8 HxWx3, None when the frame could not be read
    error: Optional[str] = None


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InferenceError("OpenCV is not installed: `pip install opencv-python-headless`") from None
    return cv2


def _to_rgb(cv2, image):
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_file(path):
    """(RGB uint8 image, None) or (None, why it could not be read)."""
    cv2 = _cv2()
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        return None, f"cannot read {path}: {err.strerror or err}"
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return None, f"cannot decode image {path}"
    return _to_rgb(cv2, image), None


def list_images(folder):
    """The image files of a folder (by extension, not recursive), sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _image_frames(paths):
    for index, path in enumerate(paths):
        image, error = read_image_file(path)
        yield Frame(index, str(path), image, error)


def _capture_frames(capture, name, is_camera):
    cv2 = _cv2()
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not is_camera else 0
    index, failed = 0, 0
    try:
        while True:
            ok, image = capture.read()
            if ok and image is not None:
                failed = 0
                yield Frame(index, name, _to_rgb(cv2, image))
            else:
                # A video ends when all its frames have been read; a failed read before that
                # (or from a camera) is reported, and a few failures in a row end the stream.
                if not is_camera and (total <= 0 or index >= total):
                    return
                failed += 1
                if failed > MAX_FAILED_READS:
                    return
                yield Frame(index, name, None, f"cannot read frame {index} of {name}")
            index += 1
    finally:
        capture.release()


def source_kind(spec):
    """'camera', 'folder', 'image' or 'video' for a --source value."""
    text = str(spec)
    if isinstance(spec, int) or text.isdigit():
        return "camera"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    return "video"


class FrameSource:
    """An iterable of Frame records; `fps` is the stream's frame rate when known (else None)."""

    def __init__(self, kind, name, frames, fps=None, capture=None):
        self.kind, self.name, self.fps = kind, name, fps
        self._frames = frames
        self._capture = capture

    def __iter__(self):
        return self._frames

    def close(self):
        """Release the video file or camera (also done when the stream ends)."""
        self._frames.close()
        if self._capture is not None:
            self._capture.release()


def _capture_fps(cv2, capture):
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1000 else None


def open_source(spec):
    """A FrameSource for an image file, a folder (its images sorted by name), a video file, or
    a camera index (an int, or a string of digits). Raises InferenceError when the source does
    not exist or cannot be opened at all."""
    kind = source_kind(spec)
    if kind == "camera":
        cv2 = _cv2()
        index = int(spec)
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise InferenceError(f"cannot open camera {index}")
        name = f"camera:{index}"
        return FrameSource(kind, name, _capture_frames(capture, name, is_camera=True),
                           _capture_fps(cv2, capture), capture)
    path = Path(str(spec))
    if not path.exists():
        raise InferenceError(f"source not found: {path}")
    if kind == "folder":
        paths = list_images(path)
        if not paths:
            raise InferenceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        return FrameSource(kind, str(path), _image_frames(paths))
    if kind == "image":
        return FrameSource(kind, str(path), _image_frames([path]))
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InferenceError(f"cannot open video {path} (not a video OpenCV can decode)")
    return FrameSource(kind, str(path), _capture_frames(capture, str(path), is_camera=False),
                       _capture_fps(cv2, capture), capture)
