"""The test oracle: official Model Garden MoViNets with seeded random weights.

Builds `movinet_model.MovinetClassifier(movinet.Movinet(...))` for a
`minimovinet.config.ModelConfig`, gives every variable a seeded random value
that exercises every part of the network, and runs the model (whole clips or
chunk by chunk with carried states) through cached `tf.function`s.

Weights ("randomization that tests something")
----------------------------------------------
A freshly built official model switches every residual branch off (ReZero
scale 0), has identity batch norms (mean 0, variance 1, gamma 1, beta 0), zero
biases and a zero positional-encoding scale.  `randomize_weights` replaces all
of it, in `model.variables` order from one `numpy.random.default_rng(seed)`:

* conv kernels:  N(0, 1) * sqrt(2 / fan_in)   (He normal; a depthwise kernel's
  fan-in is its kernel area, not area * channels as Keras counts it);
* biases:        N(0, BIAS_STD); the final classifier's bias is smaller
  (CLASSIFIER_BIAS_STD) so that the logits vary with the input, not the bias;
* BN gamma:      U(0.5, 1.5), sign flipped with probability 0.1;  beta: N(0, 0.5);
* ReZero scales: +-U(0.1, 0.3): each block's branch is ~10-30 % of the residual
  stream's rms (larger scales, e.g. U(0.4, 1.0), make the deep models chaotic:
  a small change of input statistics, such as another clip length or
  resolution than the calibration clip's, grows ~1.15x per block, and a5
  logits reach 1e5 at 172x172);
* positional-encoding scales: +-U(0.3, 1.0) (the encoding is O(1) next to SE
  pooled values of O(1): it visibly moves the SE gates);
* BN moving statistics are *calibrated*: one eager forward pass over a seeded
  random clip of CALIB_SHAPE (values in [0, 1)) visits the batch norms in
  execution order; each one measures the actual per-channel mean and variance
  of its input (with all upstream layers already final) and stores
  `mean + z * std` and `var * exp(w)` with z ~ N(0, 0.25), w ~ N(0, 0.25)
  (variance floored at 0.1 x the layer's median channel variance).  So every
  batch norm outputs roughly N(beta, gamma^2) on video-like input at any depth
  (a5 has 56 blocks) instead of exploding or vanishing.  The clip is 128x128x8
  so that even the last stage (4x4) has enough samples per channel: statistics
  from a smaller clip over-fit it and the logits drift at other sizes;
* SE gates are calibrated the same way: the se_expand bias is set so that each
  channel's pre-gate value has mean ~N(0, GATE_MEAN_STD) on the calibration
  clip (gates spread over their sensitive range, ~95 % of pre-gate values in
  [-3, 3], never all saturated).

Measured (random uniform clips, batch 2): logits within about +-2..5 for a0..a5
and every variant at 32x32x5, 64x64x16, 172x172x8 and 256x256x4; the two clips'
logits differ by 10-80 % of max |logit|; no NaN.

Everything is a deterministic function of (config, seed) (up to TF's float
rounding in the calibration pass).  WEIGHTS_VERSION changes whenever the
distributions change: use it in keys of caches derived from these weights.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Distribution constants (see the module docstring).
WEIGHTS_VERSION = 2
BIAS_STD = 0.5
CLASSIFIER_BIAS_STD = 0.1
GAMMA_RANGE = (0.5, 1.5)
GAMMA_NEG_PROB = 0.1
BETA_STD = 0.5
REZERO_RANGE = (0.1, 0.3)
POS_ENC_RANGE = (0.3, 1.0)
BN_MEAN_NOISE = 0.25        # stored mean = actual mean + z * actual std, z ~ N(0, this)
BN_LOGVAR_NOISE = 0.25      # stored var = actual var * exp(w), w ~ N(0, this)
BN_MIN_VAR = 1e-3           # absolute floor on the measured variance
BN_REL_VAR_FLOOR = 0.1      # ... and relative to the layer's median channel variance
GATE_MEAN_STD = 1.5         # pre-gate channel means after calibration ~ N(0, this)
# The calibration clip: [batch, frames, height, width, 3], uniform [0, 1).
CALIB_SHAPE = (2, 8, 128, 128, 3)

# Checkpoint key of the object graph (not a variable).
_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


# ---------------------------------------------------------------------------
# Lazy imports (collecting tests should not pay for TensorFlow).

@functools.lru_cache(maxsize=None)
def _mods():
    from conftest import need_tensorflow
    tf = need_tensorflow("the official models are the oracle")
    import tf_keras
    from official.projects.movinet.modeling import movinet, movinet_layers, movinet_model
    from official.vision.modeling.layers import nn_layers
    return dict(tf=tf, tf_keras=tf_keras, movinet=movinet, movinet_layers=movinet_layers,
                movinet_model=movinet_model, nn_layers=nn_layers)


def _tf():
    return _mods()["tf"]


# ---------------------------------------------------------------------------
# Building.

def _split_kwargs(cfg):
    kw = dict(cfg.official_kwargs())
    classifier_activation = kw.pop("classifier_activation")
    num_classes = kw.pop("num_classes")
    return kw, classifier_activation, num_classes


def build_raw(cfg, batch=None, height=None, width=None):
    """The official classifier for `cfg` with its own (fresh) initial weights."""
    m = _mods()
    kw, classifier_activation, num_classes = _split_kwargs(cfg)
    input_specs = None
    if batch is not None or height is not None or width is not None:
        input_specs = m["tf_keras"].layers.InputSpec(shape=[batch, None, height, width, 3])
        kw["input_specs"] = input_specs
    backbone = m["movinet"].Movinet(**kw, use_sync_bn=False)
    classifier_specs = None if input_specs is None else {"image": input_specs}
    model = m["movinet_model"].MovinetClassifier(
        backbone, num_classes=num_classes, activation=classifier_activation,
        output_states=cfg.causal, input_specs=classifier_specs)
    return model


def build_official(cfg, seed=0, batch=None, height=None, width=None):
    """`MovinetClassifier(Movinet(...))` for `cfg`, built, with seeded random weights.

    The input spec stays fully dynamic ([None, None, None, None, 3]) unless
    batch/height/width are given.
    """
    model = build_raw(cfg, batch=batch, height=height, width=width)
    # a fixed input spec only accepts its own batch / size: calibrate at that shape
    b, t, h, w, c = CALIB_SHAPE
    randomize_weights(model, seed, cfg=cfg,
                      calibration_shape=(batch or b, t, height or h, width or w, c))
    return model


_OFFICIAL_CACHE: Optional[collections.OrderedDict] = None
OFFICIAL_CACHE_SIZE = 2   # a5 takes GBs of TF memory: keep only the last few models alive


def get_official(cfg, seed=0):
    """`build_official(cfg, seed)`, cached per (cfg, seed) for the last OFFICIAL_CACHE_SIZE models.

    The tests are ordered by model (tests/conftest.py) so each model is built once."""
    import gc
    global _OFFICIAL_CACHE
    if _OFFICIAL_CACHE is None:
        _OFFICIAL_CACHE = collections.OrderedDict()
    key = (cfg, seed)
    if key in _OFFICIAL_CACHE:
        _OFFICIAL_CACHE.move_to_end(key)
        return _OFFICIAL_CACHE[key]
    while len(_OFFICIAL_CACHE) >= OFFICIAL_CACHE_SIZE:
        _, evicted = _OFFICIAL_CACHE.popitem(last=False)
        _FN_CACHE.pop(id(evicted), None)      # the traced function holds the model too
        del evicted
        gc.collect()
    model = build_official(cfg, seed)
    _OFFICIAL_CACHE[key] = model
    return model


# ---------------------------------------------------------------------------
# Randomization.

def _is_causal(model) -> bool:
    return bool(model.backbone.use_external_states)


def _layer_roles(model):
    """Classify the layers whose variables need special treatment."""
    m = _mods()
    bn_cls = m["tf_keras"].layers.BatchNormalization
    nn_layers = m["nn_layers"]
    ml = m["movinet_layers"]
    bns, pos_scales, gate_convs = [], set(), []
    classifier_bias = None
    for layer in model.submodules:
        if isinstance(layer, bn_cls):
            bns.append(layer)
        elif isinstance(layer, nn_layers.PositionalEncoding):
            pos_scales.add(layer._rezero._scale.ref())
        elif isinstance(layer, ml.StreamSqueezeExcitation):
            conv = layer._se_expand._conv
            if isinstance(conv, ml.MobileConv2D):
                conv = conv._conv
            gate_convs.append(conv)
        elif isinstance(layer, ml.ClassifierHead):
            conv = layer._classifier._conv
            if isinstance(conv, ml.MobileConv2D):
                conv = conv._conv
            classifier_bias = conv.bias.ref()
    return bns, pos_scales, gate_convs, classifier_bias


def _fan_in(var_name: str, shape) -> int:
    if var_name == "depthwise_kernel":       # [kh, kw, C, 1]: one filter per channel
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1]))          # [..., Cin, Cout]


def _signed_uniform(rng, lo, hi, shape=()):
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return mag * sign


@contextlib.contextmanager
def _patched_call(cls, wrapper_factory):
    original = cls.__dict__.get("call")
    inherited = cls.call
    cls.call = wrapper_factory(inherited)
    try:
        yield
    finally:
        if original is None:
            del cls.call
        else:
            cls.call = original


def randomize_weights(model, seed, cfg=None, calibration_shape=CALIB_SHAPE) -> None:
    """Give every variable of `model` a seeded random value (see module docstring).

    `cfg` is accepted for symmetry with the other helpers and not needed (the layers
    are found on the model itself)."""
    rng = np.random.default_rng(seed)
    bns, pos_scales, gate_convs, classifier_bias = _layer_roles(model)
    bn_by_var = {}
    for bn in bns:
        bn_by_var[bn.moving_mean.ref()] = bn
        bn_by_var[bn.moving_variance.ref()] = bn

    bn_noise = {}   # id(bn) -> (z for the mean, w for the log-variance)
    for var in model.variables:
        name = var.name.split("/")[-1].split(":")[0]
        shape = tuple(var.shape)
        if name in ("kernel", "depthwise_kernel"):
            value = rng.standard_normal(shape) * math.sqrt(2.0 / _fan_in(name, shape))
        elif name == "bias":
            std = CLASSIFIER_BIAS_STD if var.ref() == classifier_bias else BIAS_STD
            value = rng.normal(0.0, std, size=shape)
        elif name == "gamma":
            value = rng.uniform(*GAMMA_RANGE, size=shape)
            value *= np.where(rng.random(size=shape) < GAMMA_NEG_PROB, -1.0, 1.0)
        elif name == "beta":
            value = rng.normal(0.0, BETA_STD, size=shape)
        elif name == "moving_mean":
            z = rng.normal(0.0, BN_MEAN_NOISE, size=shape)
            bn_noise.setdefault(id(bn_by_var[var.ref()]), {})["z"] = z
            value = z                                  # replaced by the calibration
        elif name == "moving_variance":
            w = rng.normal(0.0, BN_LOGVAR_NOISE, size=shape)
            bn_noise.setdefault(id(bn_by_var[var.ref()]), {})["w"] = w
            value = np.exp(w)                          # replaced by the calibration
        elif name == "scale":
            rng_range = POS_ENC_RANGE if var.ref() in pos_scales else REZERO_RANGE
            value = _signed_uniform(rng, *rng_range, shape=shape)
        else:
            raise ValueError(f"randomize_weights: unexpected variable {var.name}")
        var.assign(np.asarray(value, dtype=var.dtype.as_numpy_dtype))

    gate_targets = {id(c): rng.normal(0.0, GATE_MEAN_STD, size=c.bias.shape)
                    for c in gate_convs}
    clip = rng.random(calibration_shape, dtype=np.float32)
    _calibrate(model, clip, bns, bn_noise, gate_convs, gate_targets)


def _calibrate(model, clip, bns, bn_noise, gate_convs, gate_targets):
    """One eager pass: each BN / SE gate sets its statistics from its actual input."""
    tf = _tf()
    m = _mods()
    bn_ids = {id(bn) for bn in bns}
    gate_ids = {id(c) for c in gate_convs}
    visited = set()

    def bn_wrapper(inherited):
        def call(self, inputs, training=None, mask=None):
            if id(self) in bn_ids and id(self) not in visited:
                visited.add(id(self))
                x = inputs.numpy().astype(np.float64)
                x = x.reshape(-1, x.shape[-1])
                mean, var = x.mean(axis=0), x.var(axis=0)
                var = np.maximum(var, max(BN_MIN_VAR, BN_REL_VAR_FLOOR * np.median(var)))
                noise = bn_noise[id(self)]
                self.moving_mean.assign((mean + noise["z"] * np.sqrt(var)).astype(np.float32))
                self.moving_variance.assign((var * np.exp(noise["w"])).astype(np.float32))
            return inherited(self, inputs, training=False, mask=mask)
        return call

    def gate_wrapper(inherited):
        def call(self, inputs, *args, **kwargs):
            out = inherited(self, inputs, *args, **kwargs)
            if id(self) in gate_ids and id(self) not in visited:
                visited.add(id(self))
                pre = out.numpy().astype(np.float64)
                pre = pre.reshape(-1, pre.shape[-1]).mean(axis=0)
                shift = gate_targets[id(self)] - pre
                self.bias.assign((self.bias.numpy() + shift).astype(np.float32))
                out = out + tf.constant(shift.astype(np.float32))
            return out
        return call

    conv_classes = {type(c) for c in gate_convs}
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched_call(m["tf_keras"].layers.BatchNormalization, bn_wrapper))
        for cls in conv_classes:
            stack.enter_context(_patched_call(cls, gate_wrapper))
        inputs = _model_inputs(model, clip, None)
        model(inputs, training=False)
    missing = (bn_ids | gate_ids) - visited
    if missing:
        raise RuntimeError(f"calibration did not reach {len(missing)} layers")


# ---------------------------------------------------------------------------
# Checkpoints.

def checkpoint_arrays(model, directory) -> Tuple[str, Dict[str, np.ndarray]]:
    """Write `tf.train.Checkpoint(model=model)` to directory/ckpt-1 and read it back."""
    tf = _tf()
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    prefix = tf.train.Checkpoint(model=model).write(os.path.join(directory, "ckpt-1"))
    reader = tf.train.load_checkpoint(prefix)
    arrays = {key: np.asarray(reader.get_tensor(key))
              for key in sorted(reader.get_variable_to_shape_map()) if key != _GRAPH_KEY}
    return prefix, arrays


# ---------------------------------------------------------------------------
# Running.

_FN_CACHE: Dict[int, tuple] = {}


def _input_signature(model):
    """TensorSpecs of the model's own (dynamic) inputs: one trace per model.

    Batch, time and spatial sizes stay unknown, channels are static (the official
    layers need them).  The time axis must stay unknown: the official causal Conv3D
    (stream3d) derives a static output shape from the input shape when the time
    length is known, which fails for unknown spatial sizes.
    """
    tf = _tf()
    return {name: tf.TensorSpec(tensor.shape, tensor.dtype, name=name)
            for name, tensor in model.input.items()}


def _call_fn(model, eager=False):
    """How to run `model` in inference mode on any input shapes.

    Traced: one cached tf.function per model (fixed, dynamic signature, so chunk
    lengths and resolutions never retrace).  Tracing costs a few seconds (a3:
    ~10 s), about as much as 5-10 eager calls; use eager=True for one-off runs of
    (2+1)D models.  Not for '3d' models: the official Conv3D wraps every call in a
    fresh jit-compiled tf.function, so each eager call recompiles every conv.
    autograph is off: the official layers have no tensor-dependent Python control
    flow (it would raise, not silently differ) and tracing is faster without it.
    """
    if eager:
        return lambda inputs: model(inputs, training=False)
    entry = _FN_CACHE.get(id(model))
    if entry is None or entry[0] is not model:
        tf = _tf()

        @tf.function(input_signature=[_input_signature(model)], autograph=False)
        def fn(inputs):
            return model(inputs, training=False)

        entry = (model, fn)
        _FN_CACHE[id(model)] = entry
    return entry[1]


def init_states(model, cfg, batch, height, width) -> Dict[str, np.ndarray]:
    """The official zero initial states for a [batch, T, height, width, 3] input."""
    if not cfg.causal:
        return {}
    states = model.backbone.init_states([int(batch), 1, int(height), int(width), 3])
    return {name: np.asarray(value) for name, value in states.items()}


def stream_serving_fn(model, cfg, size: int):
    """A streaming model as the `tf.function` a TFLite converter takes: one dict input
    (`image` [1, 1, size, size, 3] plus every state, named as the official model names them),
    one dict output (`logits` plus the next states).  Returns (fn, zero states)."""
    tf = _tf()
    zero_states = init_states(model, cfg, 1, size, size)
    specs = {name: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=name)
             for name, v in zero_states.items()}
    specs["image"] = tf.TensorSpec([1, 1, size, size, 3], tf.float32, name="image")

    @tf.function(input_signature=[specs])
    def serve(inputs):
        logits, new_states = model(inputs, training=False)
        return {"logits": logits, **new_states}

    return serve, zero_states


def _model_inputs(model, frames, states):
    tf = _tf()
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [B, T, H, W, 3], got {frames.shape}")
    inputs = {"image": tf.constant(frames)}
    if _is_causal(model):
        if states is None:
            b, _, h, w, _ = frames.shape
            states = {k: v for k, v in
                      model.backbone.init_states([b, 1, h, w, 3]).items()}
        for name, value in states.items():
            inputs[name] = tf.convert_to_tensor(value)
    return inputs


def _to_numpy_states(states) -> Dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in states.items()}


def run_stream(model, cfg, frames, chunk_sizes: Sequence[int],
               states: Optional[Dict[str, np.ndarray]] = None, eager: bool = False
               ) -> List[Tuple[np.ndarray, Dict[str, np.ndarray]]]:
    """Feed `frames` chunk by chunk, carrying the states; (logits, states) after each chunk.

    frames: float32 [B, T, H, W, 3]; chunk_sizes: positive ints summing to T.
    Starts from `states` (default: the official zero states).
    """
    if not cfg.causal:
        raise ValueError("run_stream needs a causal (stream) model; use run_clip")
    frames = np.asarray(frames, dtype=np.float32)
    chunk_sizes = [int(c) for c in chunk_sizes]
    if any(c < 1 for c in chunk_sizes) or sum(chunk_sizes) != frames.shape[1]:
        raise ValueError(f"chunk sizes {chunk_sizes} must be positive and sum to "
                         f"{frames.shape[1]} frames")
    fn = _call_fn(model, eager)
    if states is None:
        b, _, h, w, _ = frames.shape
        states = init_states(model, cfg, b, h, w)
    results = []
    start = 0
    for size in chunk_sizes:
        inputs = _model_inputs(model, frames[:, start:start + size], states)
        logits, out_states = fn(inputs)
        states = _to_numpy_states(out_states)
        results.append((np.asarray(logits, dtype=np.float32), states))
        start += size
    return results


def run_clip(model, cfg, frames, states: Optional[Dict[str, np.ndarray]] = None,
             return_states: bool = False, eager: bool = False):
    """The whole clip in one call: logits [B, num_classes].

    Causal models start from `states` (default zeros); with return_states=True
    they also return the output states.  Base models take only the image.
    """
    frames = np.asarray(frames, dtype=np.float32)
    fn = _call_fn(model, eager)
    if not cfg.causal:
        if states:
            raise ValueError("base (non-causal) models have no states")
        logits = fn(_model_inputs(model, frames, None))
        return (np.asarray(logits), {}) if return_states else np.asarray(logits)
    logits, out_states = fn(_model_inputs(model, frames, states))
    logits = np.asarray(logits, dtype=np.float32)
    return (logits, _to_numpy_states(out_states)) if return_states else logits


def run_features(model, cfg, frames, states: Optional[Dict[str, np.ndarray]] = None):
    """The official backbone's 'head' endpoint: the pooled features the classifier head reads,
    [B, P], and the next states (causal models; {} for base models)."""
    frames = np.asarray(frames, dtype=np.float32)
    inputs = _model_inputs(model, frames, states if cfg.causal else None)
    endpoints, out_states = model.backbone(inputs, training=False)
    features = np.asarray(endpoints["head"], np.float32).reshape(frames.shape[0], -1)
    return features, _to_numpy_states(out_states) if cfg.causal else {}

