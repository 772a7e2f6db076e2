"""The tfuav model zoo: Keras architectures only (no training, no conversion)."""
from tfuav.models.registry import FORMS, build_model, coral_form, get_spec, model_names

__all__ = ["FORMS", "build_model", "coral_form", "get_spec", "model_names"]
