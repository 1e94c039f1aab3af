"""Exceptions raised by minimovinet.  Each names the problem (shape, dtype, file, state key).

All derive from `MinimovinetError`; the input and state errors are also `ValueError`s so that
callers catching the usual exception keep working.
"""


class MinimovinetError(Exception):
    """Base class of every error minimovinet raises on purpose."""


class InputError(MinimovinetError, ValueError):
    """Frames of the wrong rank, shape, dtype or with non-finite values."""


class StateError(MinimovinetError, ValueError):
    """A state dict with missing, extra, wrongly shaped or foreign entries."""


class WeightsFileError(MinimovinetError, ValueError):
    """An h5 weights file that is missing, truncated, of another format or inconsistent."""


class CheckpointError(WeightsFileError):
    """A TensorFlow checkpoint that cannot be read or does not match the model."""


class TFLiteError(MinimovinetError, ValueError):
    """A .tflite file that is truncated, foreign, or not a supported MoViNet graph."""


class UnknownModelError(MinimovinetError, ValueError):
    """A model name that is neither an existing file nor a registry name (`minimovinet models`)."""


class ModelNotAvailableError(MinimovinetError):
    """A registry model that is not in the cache: says what to download, from where, to where."""


class DownloadError(MinimovinetError):
    """A download that failed or did not verify (nothing is left behind in the cache)."""


class CacheError(MinimovinetError):
    """The model cache directory cannot be created, read or written."""


class VideoError(MinimovinetError):
    """A video file or camera that cannot be read: missing, not a video, no frames, no decoder."""


class PlotError(MinimovinetError):
    """Plotting needs matplotlib (the optional extra ``minimovinet[plot]``), which is missing."""
