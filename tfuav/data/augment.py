"""Training-time augmentation: the GlimmerNet recipe as an albumentations 2.x pipeline."""
import os

import numpy as np


class Augmenter:
    """Callable uint8 HxWx3 -> uint8 HxWx3 (same size); seeded, so a fresh Augmenter with the
    same seed produces the same sequence of augmentations."""

    def __init__(self, image_size, seed):
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
        import albumentations as A
        import cv2

        self.image_size = int(image_size)
        self.seed = int(seed)
        border = cv2.BORDER_REFLECT_101
        self.transform = A.Compose([
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Perspective(scale=(0.02, 0.06), border_mode=border, p=0.2),
            A.GridDistortion(num_steps=5, distort_limit=(-0.2, 0.2), border_mode=border, p=0.2),
            A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.15),
                            hole_width_range=(0.05, 0.15), fill=0, p=0.2),
            A.GaussNoise(std_range=(0.02, 0.08), p=0.2),
            A.Affine(scale=(0.9, 1.1), translate_percent=(-0.0625, 0.0625), rotate=(-30, 30),
                     border_mode=border, p=0.3),
            A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.8, 1.2),
                          hue=(-0.03, 0.03), p=0.3),
            A.Blur(blur_limit=(3, 3) if self.image_size <= 64 else (3, 5), p=0.1),
            A.ToGray(p=0.05),
            A.RandomGamma(gamma_limit=(80, 120), p=0.2),
        ], seed=self.seed)

    def __call__(self, image):
        image = np.asarray(image, dtype=np.uint8)
        out = self.transform(image=image)["image"]
        return np.ascontiguousarray(out, dtype=np.uint8)


def build_augmenter(image_size: int, seed: int):
    """The GlimmerNet augmentation recipe: callable(uint8 HxWx3) -> uint8 HxWx3."""
    return Augmenter(image_size, seed)


class DetectionAugmenter:
    """Box-aware augmentation for detection: flips, 90-degree turns, scale-translate affine and
    colour jitter (albumentations with bbox_params), seeded like Augmenter.

    Callable (image uint8 HxWx3, annotation {"boxes" [n, 4] xywh px, "labels" [n], optional
    "ignore" [n]}) -> (image, annotation) of the same kinds. Boxes follow the image; a box
    pushed partly out of the image is clipped to it, one with less than `min_visibility` of its
    area left inside (or under a pixel wide or high) is dropped. Borders uncovered by the affine
    are filled with grey: mirrored borders would show copies of objects that have no box.
    """

    def __init__(self, image_size, seed, min_visibility=0.3):
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
        import albumentations as A
        import cv2

        self.image_size = int(image_size)
        self.seed = int(seed)
        self.transform = A.Compose([
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(scale=(0.8, 1.25), translate_percent=(-0.1, 0.1),
                     border_mode=cv2.BORDER_CONSTANT, fill=110, p=0.5),
            A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.8, 1.2),
                          hue=(-0.03, 0.03), p=0.5),
        ], bbox_params=A.BboxParams(format="coco", label_fields=["labels", "ignore"],
                                    min_visibility=min_visibility, min_width=1, min_height=1,
                                    clip=True, filter_invalid_bboxes=True),
            seed=self.seed)

    def __call__(self, image, annotation):
        image = np.asarray(image, dtype=np.uint8)
        boxes = np.asarray(annotation["boxes"], np.float32).reshape(-1, 4)
        labels = np.asarray(annotation["labels"], np.int64).reshape(-1)
        ignore = np.asarray(annotation.get("ignore", np.zeros(len(boxes), bool)), bool)
        out = self.transform(image=image, bboxes=boxes, labels=labels, ignore=ignore)
        result = {"boxes": np.asarray(out["bboxes"], np.float32).reshape(-1, 4),
                  "labels": np.asarray(out["labels"], np.int64).reshape(-1),
                  "ignore": np.asarray(out["ignore"], bool).reshape(-1)}
        return np.ascontiguousarray(out["image"], dtype=np.uint8), result
