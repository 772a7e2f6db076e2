import tfuav  # noqa: F401  (before TensorFlow)
import numpy as np
import pytest

from tfuav.eval import classification_metrics


def test_hand_computed_case():
    # true:  0 0 1 1 2 ; predicted (argmax): 0 1 1 1 0
    y = [0, 0, 1, 1, 2]
    probs = np.array([[0.8, 0.1, 0.1],
                      [0.3, 0.6, 0.1],
                      [0.1, 0.7, 0.2],
                      [0.2, 0.5, 0.3],
                      [0.5, 0.2, 0.3]])
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    a, b, c = (m["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((0.0, 0.0, 0.0))
    # weighted F1 = (2*0.5 + 2*0.8 + 1*0) / 5
    assert m["weighted_f1"] == pytest.approx(0.52)
    # AUC of class a: positives {0.8, 0.3}, negatives {0.1, 0.2, 0.5}: 5 of 6 pairs ranked right
    assert a["auc"] == pytest.approx(5 / 6)
    # class c: positive 0.3 vs negatives 0.1, 0.1, 0.2, 0.3 -> 3 wins + 1 tie = 3.5 / 4
    assert c["auc"] == pytest.approx(3.5 / 4)


def test_logits_and_absent_class():
    logits = np.log(np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]]))
    m = classification_metrics([0, 1], logits, ["a", "b", "c"])
    assert m["accuracy"] == 1.0
    assert m["per_class"]["c"]["auc"] is None
    assert m["per_class"]["a"]["auc"] == 1.0
