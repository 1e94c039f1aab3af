"""minimovinet: causal streaming MoViNet in pure NumPy + Numba."""
from .config import ModelConfig, BLOCK_SPECS, VARIANTS  # noqa: F401
from .errors import (MinimovinetError, InputError, StateError, WeightsFileError,  # noqa: F401
                     CheckpointError, TFLiteError)
