"""Classification metrics from predictions, as scikit-learn defines them (its
`confusion_matrix`, `classification_report`, `top_k_accuracy_score`), in NumPy.

Classes are integer indices; `labels` fixes which classes the matrix and the per-class scores
cover and in what order (scikit-learn's default: every class that is actual or predicted,
sorted).  A score whose denominator is zero (a class never predicted, never actual) is 0, as
scikit-learn's default ``zero_division="warn"`` returns.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["confusion_matrix", "per_class_scores", "averages", "top_k_accuracy",
           "report_labels", "format_table"]


def report_labels(actual: np.ndarray, predicted: np.ndarray) -> List[int]:
    """Every class that is actual or predicted, sorted (scikit-learn's `unique_labels`)."""
    return sorted(set(np.asarray(actual).tolist()) | set(np.asarray(predicted).tolist()))


def confusion_matrix(actual, predicted, labels: Sequence[int]) -> np.ndarray:
    """int64 [K, K]: entry [i, j] counts videos of class labels[i] predicted as labels[j]
    (rows actual, columns predicted); pairs outside `labels` are not counted."""
    position = {c: i for i, c in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), np.int64)
    for a, p in zip(np.asarray(actual).tolist(), np.asarray(predicted).tolist()):
        if a in position and p in position:
            cm[position[a], position[p]] += 1
    return cm


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class_scores(cm: np.ndarray) -> Dict[str, np.ndarray]:
    """precision, recall, f1 (float64 [K]) and support (int64 [K]) of every row class."""
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    fp, fn = predicted - tp, support - tp
    return {"precision": _ratio(tp, predicted), "recall": _ratio(tp, support),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn), "support": support}


def averages(scores: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """'macro' (the plain mean over classes) and 'weighted' (weighted by support)."""
    support = scores["support"].astype(np.float64)
    total = support.sum()
    out = {"macro": {}, "weighted": {}}
    for name in ("precision", "recall", "f1"):
        values = scores[name]
        out["macro"][name] = float(values.mean()) if values.size else 0.0
        out["weighted"][name] = float((values * support).sum() / total) if total else 0.0
    for kind in out:
        out[kind]["support"] = int(total)
    return out


def top_k_accuracy(actual, scores: np.ndarray, k: int) -> float:
    """The share of rows whose actual class is among the k highest scores [N, C] (ties broken
    as scikit-learn does: a stable sort, the later index ranks higher)."""
    actual = np.asarray(actual)
    if len(actual) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    ranked = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]        # [N, k]
    return float((ranked == actual[:, None]).any(axis=1).mean())


def format_table(names: Sequence[str], scores: Dict[str, np.ndarray],
                 avg: Dict[str, Dict[str, float]], accuracy: Optional[float] = None) -> str:
    """A text table like scikit-learn's `classification_report`."""
    width = max([len(n) for n in names] + [len("weighted avg")])
    lines = [f"{'':>{width}}  precision     recall   f1-score    support", ""]
    for i, name in enumerate(names):
        lines.append(f"{name:>{width}}  {scores['precision'][i]:9.4f}  {scores['recall'][i]:9.4f}"
                     f"  {scores['f1'][i]:9.4f}  {int(scores['support'][i]):9d}")
    lines.append("")
    total = int(scores["support"].sum())
    if accuracy is not None:
        lines.append(f"{'accuracy':>{width}}  {'':9}  {'':9}  {accuracy:9.4f}  {total:9d}")
    for kind in ("macro", "weighted"):
        a = avg[kind]
        lines.append(f"{kind + ' avg':>{width}}  {a['precision']:9.4f}  {a['recall']:9.4f}  "
                     f"{a['f1']:9.4f}  {a['support']:9d}")
    return "\n".join(lines)
