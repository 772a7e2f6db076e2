"""Classification metrics (accuracy, weighted F1, per-class precision/recall/F1/AUC)."""
import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support, roc_auc_score)


def _probabilities(scores):
    """Rows that already are probability distributions are kept; anything else (logits) goes
    through a softmax."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def classification_metrics(y_true, probs_or_logits, class_names):
    """Metrics of a classifier on one split.

    y_true: int labels [N]; probs_or_logits: [N, num_classes] scores. AUC is one-vs-rest per
    class, None when the class is absent from y_true (or is the only class present).
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    probs = _probabilities(probs_or_logits)
    labels = list(range(len(class_names)))
    if probs.shape != (len(y_true), len(class_names)):
        raise ValueError(f"scores of shape {probs.shape} do not match {len(y_true)} labels "
                         f"and {len(class_names)} classes")
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = {}
    for i, name in enumerate(class_names):
        positives = y_true == i
        auc = None
        if positives.any() and not positives.all():
            auc = float(roc_auc_score(positives, probs[:, i]))
        per_class[name] = {"precision": float(precision[i]), "recall": float(recall[i]),
                           "f1": float(f1[i]), "auc": auc}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                                      zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
