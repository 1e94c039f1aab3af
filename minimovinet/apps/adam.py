"""Adam as Keras computes it (tf_keras 2.x `optimizers.Adam`), with its decoupled weight decay.

One step t (from 1), for every parameter w with gradient g, in the parameter's dtype:

    w -= w * weight_decay * lr                   (when weight_decay is set: AdamW-style, first)
    alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    m += (g - m) * (1 - beta1)
    v += (g^2 - v) * (1 - beta2)
    w -= m * alpha / (sqrt(v) + epsilon)

Keras's defaults are the tutorial's: lr 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7.  The decay
applies to every parameter, biases included (Keras's default: nothing excluded).

Constants are rounded as TensorFlow rounds them, so that float64 parameters follow Keras's
float64 arithmetic (floatx "float64") to the last bits: lr is a variable of the parameters'
dtype; beta1 and beta2 in the powers and the weight decay go through `tf.cast` of a Python
float, i.e. a float32 tensor first; the factors (1 - beta) and epsilon are Python floats
converted to the parameter's dtype directly.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..errors import InputError

__all__ = ["Adam"]


class Adam:
    def __init__(self, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, weight_decay: float = 0.0):
        for name, value in (("learning_rate", learning_rate), ("epsilon", epsilon)):
            if not value > 0:
                raise InputError(f"{name} must be > 0, got {value}")
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= value < 1:
                raise InputError(f"{name} must be in [0, 1), got {value}")
        if not weight_decay >= 0:
            raise InputError(f"weight_decay must be >= 0, got {weight_decay}")
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, beta_1, beta_2
        self.epsilon, self.weight_decay = epsilon, weight_decay
        self.iterations = 0
        self.m: Dict[str, np.ndarray] = {}
        self.v: Dict[str, np.ndarray] = {}

    def apply(self, params: Dict[str, np.ndarray], grads: Dict[str, np.ndarray]) -> None:
        """Update `params` in place with `grads` (same names)."""
        self.iterations += 1
        for name, w in params.items():
            g = np.asarray(grads[name], w.dtype)
            f = w.dtype.type
            lr = f(self.learning_rate)
            if self.weight_decay:
                w -= w * f(np.float32(self.weight_decay)) * lr
            t = f(self.iterations)
            beta_1_power = f(np.float32(self.beta_1)) ** t
            beta_2_power = f(np.float32(self.beta_2)) ** t
            alpha = lr * np.sqrt(f(1) - beta_2_power) / (f(1) - beta_1_power)
            m = self.m.setdefault(name, np.zeros_like(w))
            v = self.v.setdefault(name, np.zeros_like(w))
            m += (g - m) * f(1 - self.beta_1)
            v += (np.square(g) - v) * f(1 - self.beta_2)
            w -= (m * alpha) / (np.sqrt(v) + f(self.epsilon))
