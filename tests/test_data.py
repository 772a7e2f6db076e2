"""tfuav.data: synthetic scenes, folder reader, augmenter, preprocess."""
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfuav.config import DataConfig
from tfuav.data import (Dataset, build_augmenter, generate_emergency_scenes, load_dataset,
                        preprocess, write_image_folder)
from tfuav.errors import TfuavError

CLASSES = ["collapsed_building", "fire", "flood", "normal"]


@pytest.fixture(scope="module")
def scenes():
    return generate_emergency_scenes(40, 32, seed=3)


# --- synthetic generator ------------------------------------------------------------------

def test_generator_shape_dtype_balanced(scenes):
    images, labels, names = scenes
    assert names == CLASSES == sorted(names)
    assert images.shape == (160, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [40, 40, 40, 40]
    assert images.std() > 10                      # not blank


def test_generator_deterministic(scenes):
    again, labels, _ = generate_emergency_scenes(40, 32, seed=3)
    assert np.array_equal(again, scenes[0]) and np.array_equal(labels, scenes[1])
    other, _, _ = generate_emergency_scenes(40, 32, seed=4)
    assert not np.array_equal(other, scenes[0])


def test_generator_fast_at_64px():
    import time
    t = time.perf_counter()
    images, _, _ = generate_emergency_scenes(120, 64, seed=0)
    assert images.shape == (480, 64, 64, 3)
    assert time.perf_counter() - t < 5.0


def _colour_histograms(images, bins=6):
    hsv = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2HSV) for im in images])
    feats = []
    for im in hsv:
        h = cv2.calcHist([im], [0, 1, 2], None, [bins, bins, bins], [0, 180, 0, 256, 0, 256])
        feats.append(h.ravel() / h.sum())
    return np.sqrt(np.asarray(feats))


def test_classes_are_distinguishable_by_colour_histograms():
    from sklearn.linear_model import LogisticRegression
    # an independent check that the scenes carry class signal (about 0.75 here; a CNN also
    # sees shapes and textures, so colour alone is deliberately not enough to be trivial)
    train_x, train_y, _ = generate_emergency_scenes(80, 32, seed=100)
    test_x, test_y, _ = generate_emergency_scenes(40, 32, seed=200)
    clf = LogisticRegression(max_iter=3000, C=10.0)
    clf.fit(_colour_histograms(train_x), train_y)
    acc = clf.score(_colour_histograms(test_x), test_y)
    assert acc > 0.6, acc


def test_load_dataset_synthetic_stratified():
    cfg = DataConfig(image_size=32, synthetic_per_class=20, val_fraction=0.2,
                     test_fraction=0.1, seed=1)
    ds = load_dataset(cfg)
    assert isinstance(ds, Dataset) and ds.source == "synthetic" and ds.skipped == []
    assert ds.class_names == CLASSES
    counts = {k: np.bincount(v.labels, minlength=4).tolist() for k, v in ds.splits.items()}
    assert counts == {"train": [14] * 4, "val": [4] * 4, "test": [2] * 4}
    for split in ds.splits.values():
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (32, 32, 3)
        assert split.labels.dtype == np.int64 and split.paths == []
    again = load_dataset(cfg)
    assert np.array_equal(again.splits["val"].images, ds.splits["val"].images)


# --- folder reader ------------------------------------------------------------------------

def _index(path):
    return int(Path(path).stem)


def test_flat_folder_round_trip(tmp_path, scenes):
    images, labels, names = scenes
    write_image_folder((images, labels, names), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == CLASSES
    ds = load_dataset(DataConfig(path=str(tmp_path), image_size=32, seed=0))
    assert ds.class_names == CLASSES and ds.skipped == [] and ds.source == str(tmp_path)
    total = 0
    for split in ds.splits.values():
        assert len(split.paths) == len(split.labels) == len(split.images)
        for img, label, path in zip(split.images, split.labels, split.paths):
            i = _index(path)
            assert label == labels[i] and Path(path).parent.name == names[label]
            assert np.array_equal(img, images[i])          # PNG lossless, same-size identity
        total += len(split.labels)
    assert total == len(labels)
    assert np.bincount(ds.splits["test"].labels).tolist() == [6] * 4   # 0.15 * 40


def test_split_folder_round_trip(tmp_path):
    cfg = DataConfig(image_size=32, synthetic_per_class=10, seed=2)
    ds = load_dataset(cfg)
    write_image_folder(ds, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test", "train", "val"]
    back = load_dataset(DataConfig(path=str(tmp_path), image_size=32))
    assert back.class_names == CLASSES
    for name, split in ds.splits.items():
        got = back.splits[name]
        assert len(got.labels) == len(split.labels)
        for c in range(4):   # files are read in index order within each class
            assert np.array_equal(got.images[got.labels == c], split.images[split.labels == c])


def test_train_test_only_carves_val(tmp_path):
    images, labels, names = generate_emergency_scenes(10, 16, seed=0)
    write_image_folder((images, labels, names), tmp_path / "train")
    write_image_folder((images[::2], labels[::2], names), tmp_path / "test")
    ds = load_dataset(DataConfig(path=str(tmp_path), image_size=16, val_fraction=0.2))
    assert len(ds.splits["test"].labels) == 20
    assert np.bincount(ds.splits["val"].labels).tolist() == [2] * 4
    assert len(ds.splits["train"].labels) == 32


def test_resize_to_image_size(tmp_path):
    images, labels, names = generate_emergency_scenes(3, 48, seed=0)
    write_image_folder((images, labels, names), tmp_path)
    ds = load_dataset(DataConfig(path=str(tmp_path), image_size=24))
    assert ds.splits["train"].images.shape[1:] == (24, 24, 3)


def test_corrupt_image_skipped_with_warning_and_strict_error(tmp_path):
    images, labels, names = generate_emergency_scenes(5, 16, seed=0)
    write_image_folder((images, labels, names), tmp_path)
    bad = tmp_path / "fire" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg \x00\x01\x02" * 10)
    with pytest.warns(UserWarning, match="broken.jpg") as rec:
        ds = load_dataset(DataConfig(path=str(tmp_path), image_size=16))
    assert len([w for w in rec if "unreadable" in str(w.message)]) == 1
    assert ds.skipped == [str(bad)]
    assert sum(len(s.labels) for s in ds.splits.values()) == 20
    with pytest.raises(TfuavError, match="broken.jpg"):
        load_dataset(DataConfig(path=str(tmp_path), image_size=16, strict=True))


def test_class_with_only_unreadable_images_is_an_error(tmp_path):
    images, labels, names = generate_emergency_scenes(3, 16, seed=0)
    write_image_folder((images, labels, names), tmp_path)
    for p in (tmp_path / "flood").iterdir():
        p.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TfuavError, match="flood"):
            load_dataset(DataConfig(path=str(tmp_path), image_size=16))


def test_missing_root_is_an_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(TfuavError, match="nope") as err:
        load_dataset(DataConfig(path=str(missing)))
    assert "\n" not in str(err.value)


def test_root_without_class_folders_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(TfuavError, match="no class folders"):
        load_dataset(DataConfig(path=str(tmp_path)))


def test_empty_class_folder_is_an_error(tmp_path):
    images, labels, names = generate_emergency_scenes(3, 16, seed=0)
    write_image_folder((images, labels, names), tmp_path)
    (tmp_path / "zzz_empty").mkdir()
    with pytest.raises(TfuavError, match="zzz_empty") as err:
        load_dataset(DataConfig(path=str(tmp_path), image_size=16))
    assert "\n" not in str(err.value)


def test_class_folders_differing_between_splits_is_an_error(tmp_path):
    images, labels, names = generate_emergency_scenes(3, 16, seed=0)
    write_image_folder((images, labels, names), tmp_path / "train")
    keep = labels != 2
    write_image_folder((images[keep], labels[keep], names), tmp_path / "test")
    (tmp_path / "test" / "flood").rmdir()
    with pytest.raises(TfuavError, match="flood"):
        load_dataset(DataConfig(path=str(tmp_path), image_size=16))


# --- augmenter and preprocess -------------------------------------------------------------

def test_augmenter_shape_dtype_deterministic(scenes):
    images = scenes[0][:24]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = build_augmenter(32, seed=7), build_augmenter(32, seed=7)
        out_a = [a(im) for im in images]
        out_b = [b(im) for im in images]
    for x, y, src in zip(out_a, out_b, images):
        assert x.shape == src.shape and x.dtype == np.uint8
        assert np.array_equal(x, y)
    assert any(not np.array_equal(x, src) for x, src in zip(out_a, images))
    c = build_augmenter(32, seed=8)
    assert any(not np.array_equal(c(im), x) for im, x in zip(images, out_a))


def test_preprocess_is_divide_by_255(scenes):
    images = scenes[0][:8]
    out = preprocess(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    assert np.array_equal(out, (images / 255.0).astype(np.float32))
    full = np.arange(256, dtype=np.uint8)
    assert np.array_equal(preprocess(full), full.astype(np.float32) / np.float32(255.0))


def test_preprocess_and_data_package_are_tensorflow_free():
    code = ("import sys, tfuav.data.preprocess; assert 'tensorflow' not in sys.modules; "
            "import tfuav.data; assert 'tensorflow' not in sys.modules; "
            "assert 'albumentations' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
