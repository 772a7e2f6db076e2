"""The tfuav model zoo: Keras architectures only (no training, no conversion)."""
from tfuav.models.registry import build_model, get_spec, model_names

__all__ = ["build_model", "get_spec", "model_names"]
