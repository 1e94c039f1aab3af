"""The raw float parameters of a model: validation, batch-norm folding, seeded random values.

Names and shapes come from `structure.param_specs(cfg)`; layouts are described there.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..config import ModelConfig
from ..errors import WeightsFileError
from ..structure import BN_FIELDS, param_specs


def check_params(cfg: ModelConfig, params: Dict[str, np.ndarray], source: str = "params"):
    """Assert that `params` has exactly the expected names, shapes and finite float values."""
    specs = param_specs(cfg)
    missing = [n for n in specs if n not in params]
    extra = [n for n in params if n not in specs]
    if missing or extra:
        raise WeightsFileError(
            f"{source}: parameters do not match model {cfg.model_id} variant {cfg.variant} "
            f"({len(specs)} expected, {len(params)} given); missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
            f"{' ...' if len(extra) > 5 else ''}")
    for name, shape in specs.items():
        arr = params[name]
        if tuple(arr.shape) != tuple(shape):
            raise WeightsFileError(f"{source}: parameter {name!r} has shape {tuple(arr.shape)}, "
                                   f"expected {tuple(shape)} for model {cfg.model_id} "
                                   f"variant {cfg.variant}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise WeightsFileError(f"{source}: parameter {name!r} has dtype {arr.dtype}, "
                                   f"expected a float type")
        if not np.all(np.isfinite(arr)):
            raise WeightsFileError(f"{source}: parameter {name!r} has non-finite values")
    if any(params[n].min() < 0 for n in specs if n.endswith("/moving_variance")):
        bad = next(n for n in specs if n.endswith("/moving_variance") and params[n].min() < 0)
        raise WeightsFileError(f"{source}: parameter {bad!r} has negative variances")


def fold_batch_norm(kernel: np.ndarray, bn: Dict[str, np.ndarray], eps: float,
                    bias: Optional[np.ndarray] = None):
    """Fold inference BN into the conv before it: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta.

    The output channel is the kernel's last axis.  Computed in float64, returned as float32.
    """
    scale = bn["gamma"].astype(np.float64) / np.sqrt(bn["moving_variance"].astype(np.float64) + eps)
    conv_bias = 0.0 if bias is None else bias.astype(np.float64)
    folded_kernel = kernel.astype(np.float64) * scale
    folded_bias = (conv_bias - bn["moving_mean"]) * scale + bn["beta"]
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def bn_params(params: Dict[str, np.ndarray], prefix: str) -> Dict[str, np.ndarray]:
    return {field: params[f"{prefix}/{field}"] for field in BN_FIELDS}


def random_params(cfg: ModelConfig, seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded random parameters for `cfg` (for demos and tests: no trained weights needed).

    Unlike a freshly initialized official model (ReZero scales 0, BN statistics 0/1, biases 0,
    which switch most of the network off), every parameter is random, so every layer counts.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_specs(cfg).items():
        if name.endswith(("/gamma", "/moving_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("/beta", "/moving_mean", "/bias")):
            value = rng.normal(0.0, 0.2, shape)
        elif name.endswith("/scale"):
            value = rng.uniform(0.3, 0.8, shape) * rng.choice([-1.0, 1.0])
        else:                                  # He-normal over the kernel's fan-in
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        params[name] = value.astype(np.float32)
    return params
