"""Training losses and targets (CenterNet heatmap, size and offset for the detectors)."""
from tfuav.losses.centernet import (centernet_losses, draw_gaussian, encode_targets,
                                    gaussian_radius)

__all__ = ["centernet_losses", "draw_gaussian", "encode_targets", "gaussian_radius"]
