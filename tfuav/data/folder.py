"""Image-folder reader: AIDER layout root/<class>/*.jpg, or root/{train,val,test}/<class>/*.jpg."""
import warnings
from pathlib import Path

import cv2
import numpy as np

from tfuav.data.dataset import SPLITS, Dataset, Split, stratified_indices, take
from tfuav.errors import TfuavError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test"}
_LAYOUT = "root/<class>/*.jpg or root/{train,val,test}/<class>/*.jpg"


def _subdirs(path):
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(path, image_size):
    """RGB uint8 [S, S, 3], or None when the file cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        bgr = None
    if bgr is None or bgr.ndim != 3 or bgr.shape[0] == 0 or bgr.shape[1] == 0:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (image_size, image_size):
        rgb = cv2.resize(rgb, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return rgb


def _class_folders(root, what):
    classes = _subdirs(root)
    if not classes:
        raise TfuavError(f"{root}: no class folders found in {what} (expected {_LAYOUT})")
    return classes


def _read_classes(folders, class_names, image_size, strict, skipped):
    """Read every class folder in ``folders`` ({name: Path}); returns images, labels, paths."""
    images, labels, paths = [], [], []
    for label, name in enumerate(class_names):
        folder = folders[name]
        files = _image_files(folder)
        if not files:
            raise TfuavError(f"{folder}: class folder '{name}' has no images "
                             f"(expected {', '.join(IMAGE_EXTENSIONS)} files)")
        good = 0
        for f in files:
            img = read_image(f, image_size)
            if img is None:
                if strict:
                    raise TfuavError(f"{f}: unreadable or corrupt image (strict mode)")
                skipped.append(str(f))
                continue
            images.append(img)
            labels.append(label)
            paths.append(str(f))
            good += 1
        if good == 0:
            raise TfuavError(f"{folder}: every image in class folder '{name}' is unreadable")
    arr = np.stack(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)
    return arr, np.asarray(labels, np.int64), paths


def _warn_skipped(skipped):
    if skipped:
        names = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {names}", stacklevel=3)


def load_folder(cfg):
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise TfuavError(f"data path not found: {root} (expected a folder {_LAYOUT})")
    if not root.is_dir():
        raise TfuavError(f"data path is not a folder: {root} (expected {_LAYOUT})")
    size = int(cfg.image_size)
    skipped = []
    subdirs = _subdirs(root)
    split_dirs = {}
    for d in subdirs:
        key = _SPLIT_ALIASES.get(d.name.lower())
        if key is not None and key not in split_dirs:
            split_dirs[key] = d

    if not split_dirs:                                   # flat AIDER layout
        class_names = [d.name for d in _class_folders(root, "the data folder")]
        images, labels, paths = _read_classes({d.name: d for d in subdirs}, class_names,
                                              size, cfg.strict, skipped)
        idx = stratified_indices(labels, {"val": cfg.val_fraction, "test": cfg.test_fraction},
                                 cfg.seed)
        splits = {name: take(images, labels, paths, idx[name]) for name in SPLITS}
    else:
        others = [d.name for d in subdirs if d not in split_dirs.values()]
        if others:
            raise TfuavError(f"{root}: mixes split folders ({', '.join(sorted(split_dirs))}) "
                             f"with other folders ({', '.join(others)}); expected {_LAYOUT}")
        if "train" not in split_dirs:
            raise TfuavError(f"{root}: has {'/'.join(sorted(split_dirs))}/ but no train/ folder")
        class_names = [d.name for d in _class_folders(split_dirs["train"], "train/")]
        read = {}
        for name in SPLITS:
            if name not in split_dirs:
                continue
            folder = split_dirs[name]
            here = [d.name for d in _class_folders(folder, f"{folder.name}/")]
            if here != class_names:
                missing = sorted(set(class_names) - set(here))
                extra = sorted(set(here) - set(class_names))
                detail = "; ".join(x for x in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra {', '.join(extra)}" if extra else "") if x)
                raise TfuavError(f"{folder}: class folders differ from "
                                 f"{split_dirs['train']} ({detail})")
            read[name] = _read_classes({d: folder / d for d in class_names}, class_names,
                                       size, cfg.strict, skipped)
        images, labels, paths = read["train"]
        carve = {n: getattr(cfg, f"{n}_fraction") for n in ("val", "test") if n not in read}
        if carve:
            idx = stratified_indices(labels, carve, cfg.seed)
            splits = {"train": take(images, labels, paths, idx["train"])}
        else:                                            # all splits given: use them as is
            splits = {"train": Split(images, labels, paths)}
        for name in ("val", "test"):
            if name in read:
                splits[name] = Split(*read[name])
            else:
                splits[name] = take(images, labels, paths, idx[name])
    _warn_skipped(skipped)
    return Dataset(class_names=class_names, splits=splits, source=str(root), skipped=skipped)


def _write_split(images, labels, class_names, out):
    for name in class_names:
        (out / name).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(labels))))
    for i, (img, label) in enumerate(zip(images, labels)):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(np.asarray(img, np.uint8), cv2.COLOR_RGB2BGR))
        if not ok:
            raise TfuavError(f"could not encode image {i} as PNG")
        buf.tofile(str(out / class_names[int(label)] / f"{i:0{width}d}.png"))


def write_image_folder(dataset_or_arrays, out_dir):
    """Write images as lossless PNGs that ``load_dataset`` reads back.

    A ``Dataset`` -> ``<out>/<split>/<class>/<i>.png`` (split layout);
    an ``(images, labels, class_names)`` tuple -> ``<out>/<class>/<i>.png`` (flat AIDER layout).
    ``i`` is the zero-padded index within the split / array. Returns the output Path.
    """
    out = Path(out_dir)
    if isinstance(dataset_or_arrays, Dataset):
        ds = dataset_or_arrays
        for name, split in ds.splits.items():
            _write_split(split.images, split.labels, ds.class_names, out / name)
    else:
        images, labels, class_names = dataset_or_arrays
        _write_split(images, labels, list(class_names), out)
    return out
