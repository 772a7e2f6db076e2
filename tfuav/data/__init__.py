"""Data: the embedded synthetic aerial-emergency scenes, image-folder datasets (AIDER layout),
augmentation and preprocessing. TensorFlow-free (albumentations is imported lazily)."""
from tfuav.data.augment import DetectionAugmenter  # noqa: F401  (box-aware augmentation)
from tfuav.data.dataset import SPLITS, Dataset, Split, stratified_indices, take
from tfuav.data.folder import IMAGE_EXTENSIONS, load_folder, read_image, write_image_folder
from tfuav.data.preprocess import preprocess
from tfuav.data.synthetic import CLASS_NAMES, generate_emergency_scenes


def load_dataset(cfg) -> Dataset:
    """``cfg`` is a DataConfig: ``cfg.path`` None -> synthetic scenes, else the folder reader."""
    if cfg.path is None:
        images, labels, class_names = generate_emergency_scenes(
            cfg.synthetic_per_class, cfg.image_size, cfg.seed)
        idx = stratified_indices(labels, {"val": cfg.val_fraction, "test": cfg.test_fraction},
                                 cfg.seed)
        splits = {name: take(images, labels, [], idx[name]) for name in SPLITS}
        return Dataset(class_names=class_names, splits=splits, source="synthetic", skipped=[])
    return load_folder(cfg)


def build_augmenter(image_size: int, seed: int):
    """GlimmerNet augmentation recipe: callable(uint8 HxWx3) -> uint8 HxWx3."""
    from tfuav.data.augment import build_augmenter as _build
    return _build(image_size, seed)


__all__ = ["CLASS_NAMES", "Dataset", "IMAGE_EXTENSIONS", "SPLITS", "Split", "build_augmenter",
           "generate_emergency_scenes", "load_dataset", "preprocess", "read_image",
           "write_image_folder"]
