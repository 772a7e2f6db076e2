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
