"""Evaluation metrics of trained classifiers."""
from tfuav.eval.metrics import classification_metrics

__all__ = ["classification_metrics"]
