"""Dataset containers and the stratified split shared by the synthetic and folder readers."""
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray   # uint8 [N, H, W, 3], RGB
    labels: np.ndarray   # int64 [N]
    paths: list = field(default_factory=list)  # source file path per image, or [] for generated data

    def __len__(self):
        return int(len(self.labels))


@dataclass
class Dataset:
    class_names: list    # sorted class names
    splits: dict         # "train" / "val" / "test" -> Split
    source: str          # folder path or "synthetic"
    skipped: list = field(default_factory=list)  # unreadable files skipped (paths)

    @property
    def num_classes(self):
        return len(self.class_names)


def _count(n, fraction):
    if fraction <= 0:
        return 0
    k = int(round(n * fraction))
    if k == 0 and n >= 3:
        k = 1
    return k


def stratified_indices(labels, fractions, seed):
    """Split indices per class: ``fractions`` maps split name -> fraction of each class;
    the remainder goes to "train". Returns {name: sorted-by-shuffle index array}."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = {"train": []}
    out.update({name: [] for name in fractions})
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, frac in fractions.items():
            k = min(_count(len(idx), frac), max(len(idx) - start - 1, 0))
            out[name].append(idx[start:start + k])
            start += k
        out["train"].append(idx[start:])
    return {name: rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            for name, parts in out.items()}


def take(images, labels, paths, idx):
    idx = np.asarray(idx, dtype=np.int64)
    return Split(images=images[idx], labels=np.asarray(labels, np.int64)[idx],
                 paths=[paths[i] for i in idx] if paths else [])
