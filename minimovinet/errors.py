"""Exceptions raised by minimovinet.  Each names the problem (shape, dtype, file, state key).

One hierarchy, by what went wrong:

    MinimovinetError
    ├── InputError            bad input: frames, arguments           (also a ValueError)
    │   ├── ConfigError       a ModelConfig with unknown or inconsistent fields
    │   ├── SettingError      a bad environment variable or global setting
    │   └── UnknownModelError a model name that is neither a file nor a registry name
    ├── StateError            a state dict that does not fit the model (also a ValueError)
    ├── FileError             a file (or camera) that is missing, unreadable, truncated or of
    │   │                     another format                          (also a ValueError)
    │   ├── WeightsFileError  an h5 weights file
    │   │   └── CheckpointError  a TensorFlow checkpoint
    │   ├── TFLiteError       a .tflite flatbuffer
    │   └── VideoError        a video file or camera
    ├── UnsupportedModelError a readable model file whose graph minimovinet does not run
    │                                                                 (also a ValueError)
    ├── ModelNotAvailableError, DownloadError, CacheError   the model cache and downloads
    └── MissingDependencyError  an optional extra that is not installed (also an ImportError)
        └── PlotError          matplotlib

The command line prints one line for any of these; anything else is a bug and is reported
with its traceback.
"""


class MinimovinetError(Exception):
    """Base class of every error minimovinet raises on purpose."""


class InputError(MinimovinetError, ValueError):
    """Frames of the wrong rank, shape, dtype or with non-finite values; a bad argument."""


class ConfigError(InputError):
    """A `ModelConfig` with an unknown model id, variant, conv / SE type or activation."""


class SettingError(InputError):
    """A bad environment variable (e.g. MINIMOVINET_INT8_FORM) or global setting (threads)."""


class UnknownModelError(InputError):
    """A model name that is neither an existing file nor a registry name (`minimovinet models`)."""


class StateError(MinimovinetError, ValueError):
    """A state dict with missing, extra, wrongly shaped or foreign entries."""


class FileError(MinimovinetError, ValueError):
    """A file that is missing, unreadable, truncated or of another format."""


class WeightsFileError(FileError):
    """An h5 weights file that is missing, truncated, of another format or inconsistent."""


class CheckpointError(WeightsFileError):
    """A TensorFlow checkpoint that cannot be read or does not match the model."""


class TFLiteError(FileError):
    """A .tflite file that is truncated, foreign or malformed."""


class VideoError(FileError):
    """A video file or camera that cannot be read: missing, not a video, no frames, no decoder."""


class UnsupportedModelError(MinimovinetError, ValueError):
    """A well-formed model file that is not a model minimovinet runs: a TFLite graph that is not
    a MoViNet stream model, an operator form LiteRT computes in a way minimovinet does not."""


class ModelNotAvailableError(MinimovinetError):
    """A registry model that is not in the cache: says what to download, from where, to where."""


class DownloadError(MinimovinetError):
    """A download that failed or did not verify (nothing is left behind in the cache)."""


class CacheError(MinimovinetError):
    """The model cache directory cannot be created, read or written."""


class ClusterError(MinimovinetError):
    """The Dask scheduler cannot be reached, or the cluster went away during a run."""


class MissingDependencyError(MinimovinetError, ImportError):
    """An optional extra is needed and not installed; the message says what to install."""


class PlotError(MissingDependencyError):
    """Plotting needs matplotlib (the optional extra ``minimovinet[plot]``), which is missing."""
