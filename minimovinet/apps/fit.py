"""Training a `ClassifierHead` on features: epochs of shuffled mini-batches, Adam, validation,
early stopping, one line per epoch.

As Keras `fit` does: the batches of an epoch are a fresh permutation (seeded), the last one may
be smaller, the epoch's loss and accuracy are the means over its training samples (with dropout
on), validation runs without dropout after the epoch.  With validation data, training stops
when the validation loss has not improved for `patience` epochs and the weights of the best
epoch are restored (Keras `EarlyStopping(restore_best_weights=True)`).  With temporal
augmentation (features [N, views, P], views > 1) every epoch draws one view per clip;
validation uses view 0 (the clip from its first frame).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, List, Optional

import numpy as np

from ..errors import InputError
from .adam import Adam
from .head import HIDDEN_BIAS, LOGITS_BIAS, ClassifierHead, dropout_mask

__all__ = ["FitOptions", "EpochResult", "fit_head", "evaluate_head", "format_epoch"]


@dataclasses.dataclass(frozen=True)
class FitOptions:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    dropout: float = 0.2
    patience: int = 5
    seed: int = 0

    def check(self) -> "FitOptions":
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InputError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.learning_rate > 0 and self.weight_decay >= 0):
            raise InputError(f"learning_rate must be > 0 and weight_decay >= 0, got "
                             f"{self.learning_rate} and {self.weight_decay}")
        return self


@dataclasses.dataclass(frozen=True)
class EpochResult:
    epoch: int
    loss: float
    accuracy: float
    val_loss: Optional[float] = None
    val_accuracy: Optional[float] = None


def format_epoch(result: EpochResult, epochs: int) -> str:
    line = (f"epoch {result.epoch:>{len(str(epochs))}}/{epochs}  loss {result.loss:.4f}  "
            f"accuracy {result.accuracy:.4f}")
    if result.val_loss is not None:
        line += f"  val loss {result.val_loss:.4f}  val accuracy {result.val_accuracy:.4f}"
    return line


def evaluate_head(head: ClassifierHead, features: np.ndarray, labels: np.ndarray,
                  label_smoothing: float = 0.0, batch_size: int = 256):
    """(mean loss, accuracy) of features [N, P] without dropout."""
    total, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        x, y = features[start:start + batch_size], labels[start:start + batch_size]
        loss, logits, _ = head.loss_and_gradients(x, y, label_smoothing)          # [b, C]
        total += loss * len(y)
        correct += int((logits.argmax(axis=1) == y).sum())
    return total / len(labels), correct / len(labels)


def _train_epoch(head, optimizer, features, labels, options: FitOptions, rng) -> tuple:
    """One pass over the training clips: (mean loss, accuracy)."""
    N, views, _ = features.shape
    order = rng.permutation(N)
    chosen = rng.integers(0, views, N) if views > 1 else np.zeros(N, np.int64)
    masked = bool(options.dropout) and head.kind == "official"
    total, correct = 0.0, 0
    for start in range(0, N, options.batch_size):
        batch = order[start:start + options.batch_size]
        x, y = features[batch, chosen[batch]], labels[batch]                     # [b, P], [b]
        mask = (dropout_mask(rng, (len(batch), head.params[HIDDEN_BIAS].shape[0]),
                             options.dropout, x.dtype) if masked else None)      # [b, H]
        loss, logits, grads = head.loss_and_gradients(x, y, options.label_smoothing, mask)
        optimizer.apply(head.params, grads)
        total += loss * len(batch)
        correct += int((logits.argmax(axis=1) == y).sum())
    return total / N, correct / N


def fit_head(head: ClassifierHead, features: np.ndarray, labels: np.ndarray,
             options: FitOptions, val_features: Optional[np.ndarray] = None,
             val_labels: Optional[np.ndarray] = None,
             log: Optional[Callable[[str], None]] = print) -> List[EpochResult]:
    """Train `head` in place on features [N, views, P] and labels [N]; val_features [M, P].
    Returns one `EpochResult` per epoch run; the head ends with the best epoch's weights."""
    options.check()
    dtype = head.params[HIDDEN_BIAS if head.kind == "official" else LOGITS_BIAS].dtype
    features = np.asarray(features, dtype)
    rng = np.random.default_rng(options.seed)
    optimizer = Adam(options.learning_rate, weight_decay=options.weight_decay)
    validate = val_features is not None and len(val_labels) > 0
    history: List[EpochResult] = []
    best, best_loss, best_epoch, waited = None, math.inf, 0, 0
    for epoch in range(1, options.epochs + 1):
        loss, accuracy = _train_epoch(head, optimizer, features, labels, options, rng)
        result = EpochResult(epoch, loss, accuracy)
        if validate:
            val_loss, val_accuracy = evaluate_head(head, np.asarray(val_features, dtype),
                                                   val_labels, options.label_smoothing)
            result = dataclasses.replace(result, val_loss=val_loss, val_accuracy=val_accuracy)
        history.append(result)
        if log is not None:
            log(format_epoch(result, options.epochs))
        if not validate:
            continue
        if result.val_loss < best_loss:
            best, best_loss, best_epoch, waited = head.copy(), result.val_loss, epoch, 0
        else:
            waited += 1
            if waited >= options.patience:
                if log is not None:
                    log(f"early stop: val loss has not improved for {waited} epochs")
                break
    if best is not None:
        head.params = best.params
        if log is not None and best_epoch != history[-1].epoch:
            log(f"kept the weights of epoch {best_epoch} (the lowest val loss, "
                f"{best_loss:.4f})")
    return history
