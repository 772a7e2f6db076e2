"""The Raspberry Pi bundle: the int8 model, its labels, a copy of tfuav.runtime as the
stand-alone package `tfuav_runtime` (numpy + ai-edge-litert + OpenCV, no TensorFlow), the
requirements, a systemd unit example and a README."""
from pathlib import Path

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.errors import TfuavError
from tfuav.export.folder import render, write_folder

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent.parent / "firmware_export" / "rpi"
BUNDLE_PACKAGE = "tfuav_runtime"
MODEL_FILE = "model_int8.tflite"


def export_rpi(model_bytes, target, out_dir, name, labels=None, echo=print):
    """Writes <out_dir>/rpi_bundle/; returns a summary dict."""
    if target.family not in ("rpi", "coral"):
        raise TfuavError(f"the Raspberry Pi bundle is for rpi and coral targets; {target.name} is "
                         f"a {target.family} target")
    info = tflite_info(model_bytes)
    classes = int(info["outputs"][0]["shape"][-1])
    labels = list(labels) if labels else [f"class_{k}" for k in range(classes)]
    if len(labels) != classes:
        raise TfuavError(f"{len(labels)} labels given, the model's first output has "
                         f"{classes} classes")
    files = {MODEL_FILE: bytes(model_bytes), "labels.txt": "\n".join(labels) + "\n"}
    for source in sorted(RUNTIME_DIR.glob("*.py")):
        files[f"{BUNDLE_PACKAGE}/{source.name}"] = source.read_text()
    values = {"MODEL": name, "TARGET": target.name, "MODEL_FILE": MODEL_FILE,
              "PACKAGE": BUNDLE_PACKAGE,
              "EDGETPU_FLAG": " --edgetpu" if target.family == "coral" else ""}
    for template in sorted(TEMPLATE_DIR.glob("*.in")):
        files[template.name.removesuffix(".in")] = render(template, values)
    folder = Path(out_dir) / "rpi_bundle"
    write_folder(folder, files)
    (folder / "run.sh").chmod(0o755)
    echo(f"  Raspberry Pi bundle: {folder}")
    return {"folder": str(folder), "model_bytes": len(model_bytes), "labels": labels,
            "files": sorted(files)}
