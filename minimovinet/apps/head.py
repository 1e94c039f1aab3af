"""A new classifier head in NumPy: forward pass, softmax cross-entropy and its gradients.

The official head (`ClassifierHead` of the Model Garden's MoViNet): a dense layer P -> hidden
(2048) with the backbone's classifier activation, dropout, a dense layer hidden -> classes
(the 1x1x1 convs of the official model are dense layers on the pooled features).  Initialized
as the official one: hidden kernel He-normal (truncated normal, Keras `HeNormal`), logits
kernel normal(0, 0.01), biases zero.  ``kind="linear"``: one dense layer P -> classes
(initialized like the official logits layer).

The parameters carry the float model's names (`structure.py`): ``classifier/hidden/kernel``
[P, hidden], ``classifier/hidden/bias``, ``classifier/logits/kernel`` [hidden, C],
``classifier/logits/bias``.  A linear head is stored in the same layout without any change to
the model format: the hidden layer becomes [I_P | 0] with the activation "linear" (an existing
`ModelConfig.classifier_activation`), which passes the features through exactly (products by
1, sums with 0), and the logits kernel [W; 0] (zero rows): x @ W + b up to the summation
order of the float kernels.

The loss is Keras's `SparseCategoricalCrossentropy(from_logits=True)` (with label smoothing:
`CategoricalCrossentropy(from_logits=True, label_smoothing=s)` on one-hot labels, targets
y * (1 - s) + s / C), averaged over the batch.  Dropout multiplies the hidden activations by a
mask of 0 and 1 / (1 - rate) (Keras's inverted dropout); a mask may be given, for tests.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import InputError

__all__ = ["KINDS", "ClassifierHead", "activate", "activation_gradient", "dropout_mask",
           "HIDDEN_KERNEL", "HIDDEN_BIAS", "LOGITS_KERNEL", "LOGITS_BIAS"]

KINDS = ("official", "linear")
HIDDEN_KERNEL, HIDDEN_BIAS = "classifier/hidden/kernel", "classifier/hidden/bias"
LOGITS_KERNEL, LOGITS_BIAS = "classifier/logits/kernel", "classifier/logits/bias"

Params = Dict[str, np.ndarray]


# ---- activations (as the float kernels and TensorFlow compute them) ---------------------------

def activate(h: np.ndarray, name: str) -> np.ndarray:
    one = h.dtype.type(1)
    if name == "linear":
        return h
    if name == "relu":
        return np.maximum(h, 0)
    if name == "relu6":
        return np.clip(h, 0, 6)
    if name == "swish":
        return h / (one + np.exp(-h))
    if name == "hard_swish":
        return (h * np.clip(h + 3, 0, 6)) * h.dtype.type(1.0 / 6.0)
    if name == "sigmoid":
        return one / (one + np.exp(-h))
    if name == "hard_sigmoid":
        return np.clip(h + 3, 0, 6) * h.dtype.type(0.16667)
    raise InputError(f"unknown classifier activation {name!r}")


def activation_gradient(h: np.ndarray, name: str) -> np.ndarray:
    """d activate(h) / dh (TensorFlow's: relu6 has gradient 0 at 0 and 6)."""
    one = h.dtype.type(1)
    if name == "linear":
        return np.ones_like(h)
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "relu6":
        return ((h > 0) & (h < 6)).astype(h.dtype)
    if name in ("swish", "sigmoid"):
        s = one / (one + np.exp(-h))
        return s * (one + h * (one - s)) if name == "swish" else s * (one - s)
    inside = ((h > -3) & (h < 3)).astype(h.dtype)
    if name == "hard_swish":
        return (np.clip(h + 3, 0, 6) + h * inside) * h.dtype.type(1.0 / 6.0)
    if name == "hard_sigmoid":
        return inside * h.dtype.type(0.16667)
    raise InputError(f"unknown classifier activation {name!r}")


def dropout_mask(rng: np.random.Generator, shape, rate: float, dtype=np.float32) -> np.ndarray:
    """Keras's inverted dropout: 1 / (1 - rate) where kept (probability 1 - rate), else 0."""
    keep = rng.random(shape) >= rate
    dtype = np.dtype(dtype)
    return keep.astype(dtype) / dtype.type(1.0 - rate)


def _truncated_normal(rng, shape, stddev):
    """Normal values redrawn until within 2 standard deviations (Keras TruncatedNormal)."""
    values = rng.normal(0.0, stddev, shape)
    outside = np.abs(values) > 2 * stddev
    while outside.any():
        values[outside] = rng.normal(0.0, stddev, int(outside.sum()))
        outside = np.abs(values) > 2 * stddev
    return values


class ClassifierHead:
    """Head parameters and their maths.  `features` P, `classes` C, `hidden` H (official)."""

    def __init__(self, params: Params, activation: str, kind: str = "official"):
        if kind not in KINDS:
            raise InputError(f"head must be one of {', '.join(KINDS)}, got {kind!r}")
        activate(np.zeros(1, np.float32), activation)         # an unknown name fails here
        self.params, self.activation, self.kind = params, activation, kind

    @classmethod
    def initialize(cls, features: int, classes: int, hidden: int, activation: str,
                   kind: str = "official", seed: int = 0, dtype=np.float32) -> "ClassifierHead":
        rng = np.random.default_rng(seed)
        if kind == "linear":
            params = {LOGITS_KERNEL: rng.normal(0.0, 0.01, (features, classes)),
                      LOGITS_BIAS: np.zeros(classes)}
        else:
            he = np.sqrt(2.0 / features) / 0.87962566103423978      # Keras HeNormal stddev
            params = {HIDDEN_KERNEL: _truncated_normal(rng, (features, hidden), he),
                      HIDDEN_BIAS: np.zeros(hidden),
                      LOGITS_KERNEL: rng.normal(0.0, 0.01, (hidden, classes)),
                      LOGITS_BIAS: np.zeros(classes)}
        return cls({k: v.astype(dtype) for k, v in params.items()}, activation, kind)

    @property
    def num_classes(self) -> int:
        return self.params[LOGITS_BIAS].shape[0]

    def copy(self) -> "ClassifierHead":
        return ClassifierHead({k: v.copy() for k, v in self.params.items()}, self.activation,
                              self.kind)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Inference (no dropout): features [B, P] -> logits [B, C]."""
        x = np.asarray(x, self.params[LOGITS_BIAS].dtype)
        if self.kind == "official":
            x = activate(x @ self.params[HIDDEN_KERNEL] + self.params[HIDDEN_BIAS],
                         self.activation)                                     # [B, H]
        return x @ self.params[LOGITS_KERNEL] + self.params[LOGITS_BIAS]      # [B, C]

    def loss_and_gradients(self, x: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0,
                           mask: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray, Params]:
        """Mean cross-entropy of a batch, its logits [B, C] and the gradient of every
        parameter.  mask [B, H]: dropout mask of the hidden activations (None: no dropout)."""
        p = self.params
        x = np.asarray(x, p[LOGITS_BIAS].dtype)                               # [B, P]
        if self.kind == "official":
            pre = x @ p[HIDDEN_KERNEL] + p[HIDDEN_BIAS]                       # [B, H]
            hidden = activate(pre, self.activation)
            dropped = hidden if mask is None else hidden * mask
        else:
            dropped = x
        logits = dropped @ p[LOGITS_KERNEL] + p[LOGITS_BIAS]                  # [B, C]
        loss, d_logits = _cross_entropy(logits, labels, label_smoothing)      # [B, C]
        grads = {LOGITS_KERNEL: dropped.T @ d_logits, LOGITS_BIAS: d_logits.sum(axis=0)}
        if self.kind == "official":
            d_hidden = d_logits @ p[LOGITS_KERNEL].T                          # [B, H]
            if mask is not None:
                d_hidden = d_hidden * mask
            d_pre = d_hidden * activation_gradient(pre, self.activation)
            grads[HIDDEN_KERNEL] = x.T @ d_pre                                # [P, H]
            grads[HIDDEN_BIAS] = d_pre.sum(axis=0)
        return loss, logits, grads

    def model_params(self, hidden: int) -> Tuple[Params, str]:
        """(the four classifier parameters of a float model, its classifier activation)."""
        if self.kind == "official":
            return {k: v.astype(np.float32) for k, v in self.params.items()}, self.activation
        w, b = self.params[LOGITS_KERNEL], self.params[LOGITS_BIAS]           # [P, C], [C]
        P, C = w.shape
        if P > hidden:
            raise InputError(f"a linear head over {P} features does not fit the model format's "
                             f"hidden layer of {hidden}")
        eye = np.zeros((P, hidden), np.float32)
        eye[np.arange(P), np.arange(P)] = 1
        logits = np.zeros((hidden, C), np.float32)
        logits[:P] = w
        return {HIDDEN_KERNEL: eye, HIDDEN_BIAS: np.zeros(hidden, np.float32),
                LOGITS_KERNEL: logits, LOGITS_BIAS: b.astype(np.float32)}, "linear"


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, smoothing: float):
    """(mean softmax cross-entropy, its gradient by the logits [B, C])."""
    B, C = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))   # [B, C]
    targets = np.zeros_like(logits)
    targets[np.arange(B), labels] = 1
    if smoothing:
        targets = targets * logits.dtype.type(1 - smoothing) + logits.dtype.type(smoothing / C)
    loss = float(-(targets * log_probs).sum() / B)
    return loss, (np.exp(log_probs) - targets) / logits.dtype.type(B)
