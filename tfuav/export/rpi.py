"""The Raspberry Pi bundle: the int8 model, its labels, a copy of tfuav.runtime as the
stand-alone package `tfuav_runtime` (numpy + ai-edge-litert + OpenCV, no TensorFlow), the
requirements, a systemd unit example and a README. A detector's bundle also holds
detector.json, its decoding parameters, which the runtime finds next to the model."""
import json
from pathlib import Path

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.errors import TfuavError
from tfuav.export import model_labels
from tfuav.export.folder import render, write_folder
from tfuav.runtime.detector import SIDECAR_NAME

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent.parent / "firmware_export" / "rpi"
BUNDLE_PACKAGE = "tfuav_runtime"
MODEL_FILE = "model_int8.tflite"
EDGETPU_MODEL_FILE = "model_int8_edgetpu.tflite"


def export_rpi(model_bytes, target, out_dir, name, labels=None, edgetpu_model=None, echo=print,
               detection=None):
    """Writes <out_dir>/rpi_bundle/; returns a summary dict. edgetpu_model: the model compiled
    by edgetpu_compiler (coral target), which run.sh then uses. detection: a
    tfuav.export.detection.Detection for a detector (one output [1, H, W, C + 4])."""
    if target.family not in ("rpi", "coral"):
        raise TfuavError(f"the Raspberry Pi bundle is for rpi and coral targets; {target.name} is "
                         f"a {target.family} target")
    info = tflite_info(model_bytes)
    if detection is not None:
        detection.grid(info)
    labels = model_labels(info, labels, detection)
    files = {MODEL_FILE: bytes(model_bytes), "labels.txt": "\n".join(labels) + "\n"}
    if detection is not None:
        files[SIDECAR_NAME] = json.dumps(detection.sidecar(), indent=2) + "\n"
    run_model = MODEL_FILE
    if edgetpu_model is not None:
        run_model = EDGETPU_MODEL_FILE
        files[EDGETPU_MODEL_FILE] = bytes(edgetpu_model)
    for source in sorted(RUNTIME_DIR.glob("*.py")):
        files[f"{BUNDLE_PACKAGE}/{source.name}"] = source.read_text()
    values = {"MODEL": name, "TARGET": target.name, "MODEL_FILE": run_model,
              "EDGETPU_NOTE": _edgetpu_note(target, edgetpu_model is not None),
              "PACKAGE": BUNDLE_PACKAGE,
              "EDGETPU_FLAG": " --edgetpu" if target.family == "coral" else "",
              "DETECTOR_NOTE": _detector_note(detection)}
    for template in sorted(TEMPLATE_DIR.glob("*.in")):
        files[template.name.removesuffix(".in")] = render(template, values)
    folder = Path(out_dir) / "rpi_bundle"
    write_folder(folder, files)
    (folder / "run.sh").chmod(0o755)
    echo(f"  Raspberry Pi bundle: {folder}")
    summary = {"folder": str(folder), "model_bytes": len(model_bytes), "labels": labels,
               "files": sorted(files)}
    if detection is not None:
        summary["detection"] = detection.to_dict()
    return summary


def _detector_note(detection):
    if detection is None:
        return ""
    return (f"\nThis model is a detector ({detection.num_classes} classes, stride "
            f"{detection.stride}): `{SIDECAR_NAME}` holds its decoding parameters (at most "
            f"{detection.top_k} boxes per frame, scores >= {detection.score_threshold:g}; "
            "`--max-boxes` and `--score-threshold` override them), and each frame prints "
            '`{"frame": 0, "source": ..., "boxes": [{"label": ..., "class": ..., "score": ..., '
            '"x": ..., "y": ..., "w": ..., "h": ...}], "latency_ms": ...}`, boxes in the '
            "frame's pixels (x, y: top-left corner), best first; `--save-video` draws them.\n")


def _edgetpu_note(target, compiled):
    if target.family != "coral":
        return ""
    if compiled:
        return (f"\nFor the Coral Edge TPU: `run.sh` runs `{EDGETPU_MODEL_FILE}`, the model "
                "compiled by `edgetpu_compiler`, through the Edge TPU delegate; install "
                "`libedgetpu1-std` from Coral's apt repository first.\n")
    return (f"\nFor the Coral Edge TPU: compile the model first (`edgetpu_compiler -s "
            f"{MODEL_FILE}` writes `{EDGETPU_MODEL_FILE}`; the compiler runs on x86-64 Linux), "
            f"copy it here and run `MODEL={EDGETPU_MODEL_FILE} ./run.sh ...`. The Edge TPU "
            "delegate needs `libedgetpu1-std` from Coral's apt repository.\n")
