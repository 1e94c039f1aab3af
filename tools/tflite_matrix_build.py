"""The builder of tools/make_tflite_matrix.py: runs INSIDE a throwaway venv of one TensorFlow
release (TensorFlow 2.12 .. 2.21, tf-models-official installed with --no-deps) and writes the
int8 TFLite files of that release into a directory.

    python tools/tflite_matrix_build.py --out DIR --jobs JOBS.json

JOBS.json: a list of {"file", "model", "variant", "positional_encoding", "io", "per_channel"}
("model": "reduced" for the reduced block spec below, or an official id such as "a3").
Writes DIR/<file> for each job it can convert and DIR/build.json: the versions, the reduced
spec, and per job either the settings used or why it was skipped.

Only NumPy and TensorFlow are imported from the venv (not minimovinet, not tests/): this file
carries what it needs from tests/oracle.py (the seeded weight randomization with calibrated
batch-norm statistics and SE gates, `stream_serving_fn`) and tests/int8_support.py (the
stateful representative dataset, the converter settings), adapted so that it runs on every
release from 2.12 (tf.keras is Keras 2) to 2.21 (Keras 2 is tf_keras).  The Model Garden's
MoViNet modeling code is imported through `lean_import_movinet` (see there): its package
__init__ files import the whole Model Garden (datasets, text ops, COCO tools...), which a
--no-deps install does not have and the modeling code does not use.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import json
import math
import os
import sys
import time
import traceback

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ---------------------------------------------------------------------------------------------
# The reduced block spec (A0-like, one or two blocks per group).  Registered into the official
# movinet.BLOCK_SPECS under REDUCED_ID at build time.  Kept as plain data (and written to the
# manifest) so that the tests and minimovinet can rebuild it.

REDUCED_ID = "mm_matrix"
REDUCED_SPEC = {
    "stem": {"filters": 8, "kernel": [1, 3, 3], "stride": [1, 2, 2]},
    "groups": [
        # group 0: stride 2 with a conv skip, kernel (1,5,5): no stream buffer
        {"out_filters": 8, "blocks": [
            {"expand": 24, "kernel": [1, 5, 5], "stride": [1, 2, 2]}]},
        # group 1: kt=3, stride 2 + conv skip
        {"out_filters": 16, "blocks": [
            {"expand": 40, "kernel": [3, 3, 3], "stride": [1, 2, 2]}]},
        # group 2: kt=5, stride 2 + conv skip
        {"out_filters": 24, "blocks": [
            {"expand": 64, "kernel": [5, 3, 3], "stride": [1, 2, 2]}]},
        # group 3: no stride, identity skip, kt=5 (like A0's group 3)
        {"out_filters": 24, "blocks": [
            {"expand": 72, "kernel": [5, 3, 3], "stride": [1, 1, 1]}]},
        # group 4: kt=3, stride 2 + conv skip
        {"out_filters": 32, "blocks": [
            {"expand": 96, "kernel": [3, 3, 3], "stride": [1, 2, 2]}]},
    ],
    "head": {"project_filters": 64, "hidden_filters": 128},
}

# Variants as the official `Movinet` / `MovinetClassifier` arguments (minimovinet/config.py).
VARIANTS = {
    "stream": dict(conv_type="2plus1d", se_type="2plus3d", activation="hard_swish",
                   gating_activation="hard_sigmoid", classifier_activation="swish"),
    "mobile": dict(conv_type="2plus1d", se_type="none", activation="relu6",
                   gating_activation="hard_sigmoid", classifier_activation="relu6"),
}

NUM_CLASSES = 10
HEIGHT, WIDTH = 64, 64
WEIGHT_SEED = 3
CALIB_SEED = 1003
CALIB_CLIPS, CALIB_FRAMES = 2, 6

# The weight randomization of tests/oracle.py (WEIGHTS_VERSION 2).
BIAS_STD = 0.5
CLASSIFIER_BIAS_STD = 0.1
GAMMA_RANGE = (0.5, 1.5)
GAMMA_NEG_PROB = 0.1
BETA_STD = 0.5
REZERO_RANGE = (0.1, 0.3)
POS_ENC_RANGE = (0.3, 1.0)
BN_MEAN_NOISE = 0.25
BN_LOGVAR_NOISE = 0.25
BN_MIN_VAR = 1e-3
BN_REL_VAR_FLOOR = 0.1
GATE_MEAN_STD = 1.5
CALIB_SHAPE = (2, 8, 128, 128, 3)


# ---------------------------------------------------------------------------------------------
# Importing the Model Garden's MoViNet modeling code alone.

class _Anything:
    """Stands for the Model Garden's registries and experiment configs: any attribute is
    another _Anything, calling one with a single callable (a decorator) returns it."""

    def __getattr__(self, name):
        return _Anything()

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        return _Anything()


# Modules the modeling code imports only to register builders (decorators) or for the
# experiment config type of `build_movinet_model`: stubbed.
_STUBS = ("official.vision.modeling.backbones", "official.vision.modeling.backbones.factory",
          "official.vision.modeling.factory_3d", "official.projects.movinet.configs",
          "official.projects.movinet.configs.movinet")
# Third-party modules some releases import for type annotations only (mish.py of 2.12..2.15:
# `tensorflow_addons.utils.types`): stubbed when not installed.
_OPTIONAL_STUBS = ("tensorflow_addons", "tensorflow_addons.utils", "tensorflow_addons.utils.types")
# Packages whose __init__ is light and needed (they define what the modeling code uses).
_RUN_INIT = ("official.modeling.hyperparams", "official.modeling.activations")


class _LeanLoader:
    def __init__(self, stub, locations=()):
        self.stub, self.locations = stub, list(locations)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = self.locations
        if self.stub:
            module.__getattr__ = lambda name: _Anything()


class _LeanFinder:
    """Imports `official.*` packages without running their __init__ (which import the whole
    Model Garden), and stubs the registry modules (`_STUBS`).  Modules are loaded from the
    installed files unchanged."""

    def find_spec(self, name, path=None, target=None):
        if name in _OPTIONAL_STUBS and importlib.machinery.PathFinder.find_spec(
                name.split(".")[0]) is None:
            return importlib.machinery.ModuleSpec(name, _LeanLoader(True), is_package=True)
        if not name.startswith("official"):
            return None
        if name in _STUBS:
            return importlib.machinery.ModuleSpec(name, _LeanLoader(True), is_package=True)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.submodule_search_locations is not None \
                and name not in _RUN_INIT:
            return importlib.machinery.ModuleSpec(
                name, _LeanLoader(False, spec.submodule_search_locations), is_package=True)
        return None


def lean_import_movinet():
    """(tf, keras, movinet, movinet_layers, movinet_model, nn_layers): `keras` is the Keras 2
    the Model Garden uses (tf_keras from TF 2.16 on, tf.keras before)."""
    import tensorflow as tf
    if not any(isinstance(f, _LeanFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LeanFinder())
    from official.projects.movinet.modeling import movinet, movinet_layers, movinet_model
    from official.vision.modeling.layers import nn_layers
    keras = getattr(movinet, "tf_keras", None) or tf.keras
    return tf, keras, movinet, movinet_layers, movinet_model, nn_layers


# ---------------------------------------------------------------------------------------------
# Building (tests/oracle.py: build_raw + randomize_weights).

def register_reduced_spec(movinet):
    s = REDUCED_SPEC
    specs = [movinet.StemSpec(filters=s["stem"]["filters"], kernel_size=tuple(s["stem"]["kernel"]),
                              strides=tuple(s["stem"]["stride"]))]
    for g in s["groups"]:
        specs.append(movinet.MovinetBlockSpec(
            base_filters=g["out_filters"],
            expand_filters=tuple(b["expand"] for b in g["blocks"]),
            kernel_sizes=tuple(tuple(b["kernel"]) for b in g["blocks"]),
            strides=tuple(tuple(b["stride"]) for b in g["blocks"])))
    specs.append(movinet.HeadSpec(project_filters=s["head"]["project_filters"],
                                  head_filters=s["head"]["hidden_filters"]))
    movinet.BLOCK_SPECS[REDUCED_ID] = tuple(specs)


def build_model(mods, model_id, variant, positional_encoding, seed=WEIGHT_SEED):
    tf, keras, movinet, movinet_layers, movinet_model, nn_layers = mods
    v = dict(VARIANTS[variant])
    classifier_activation = v.pop("classifier_activation")
    backbone = movinet.Movinet(model_id=model_id, causal=True,
                               use_positional_encoding=bool(positional_encoding),
                               use_external_states=True, use_sync_bn=False, **v)
    model = movinet_model.MovinetClassifier(backbone, num_classes=NUM_CLASSES,
                                            activation=classifier_activation, output_states=True)
    randomize_weights(mods, model, seed)
    return model


def _unwrap_conv(mods, conv):
    ml = mods[3]
    return conv._conv if isinstance(conv, ml.MobileConv2D) else conv


def _layer_roles(mods, model):
    keras, ml, nn_layers = mods[1], mods[3], mods[5]
    bns, pos_scales, gate_convs, classifier_bias = [], set(), [], None
    for layer in model.submodules:
        if isinstance(layer, keras.layers.BatchNormalization):
            bns.append(layer)
        elif isinstance(layer, nn_layers.PositionalEncoding):
            pos_scales.add(layer._rezero._scale.ref())
        elif isinstance(layer, ml.StreamSqueezeExcitation):
            gate_convs.append(_unwrap_conv(mods, layer._se_expand._conv))
        elif isinstance(layer, ml.ClassifierHead):
            classifier_bias = _unwrap_conv(mods, layer._classifier._conv).bias.ref()
    return bns, pos_scales, gate_convs, classifier_bias


def _fan_in(var_name, shape):
    if var_name == "depthwise_kernel":
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1]))


def _signed_uniform(rng, lo, hi, shape=()):
    mag = rng.uniform(lo, hi, size=shape)
    return mag * np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)


@contextlib.contextmanager
def _patched_call(cls, wrapper_factory):
    original = cls.__dict__.get("call")
    cls.call = wrapper_factory(cls.call)
    try:
        yield
    finally:
        if original is None:
            del cls.call
        else:
            cls.call = original


def randomize_weights(mods, model, seed):
    """tests/oracle.py's randomize_weights (see its docstring), for any release."""
    rng = np.random.default_rng(seed)
    bns, pos_scales, gate_convs, classifier_bias = _layer_roles(mods, model)
    bn_by_var = {}
    for bn in bns:
        bn_by_var[bn.moving_mean.ref()] = bn
        bn_by_var[bn.moving_variance.ref()] = bn
    bn_noise = {}
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
            value = z
        elif name == "moving_variance":
            w = rng.normal(0.0, BN_LOGVAR_NOISE, size=shape)
            bn_noise.setdefault(id(bn_by_var[var.ref()]), {})["w"] = w
            value = np.exp(w)
        elif name == "scale":
            value = _signed_uniform(rng, *(POS_ENC_RANGE if var.ref() in pos_scales
                                           else REZERO_RANGE), shape=shape)
        else:
            raise ValueError(f"randomize_weights: unexpected variable {var.name}")
        var.assign(np.asarray(value, dtype=var.dtype.as_numpy_dtype))
    gate_targets = {id(c): rng.normal(0.0, GATE_MEAN_STD, size=c.bias.shape) for c in gate_convs}
    clip = rng.random(CALIB_SHAPE, dtype=np.float32)
    _calibrate(mods, model, clip, bns, bn_noise, gate_convs, gate_targets)


def _calibrate(mods, model, clip, bns, bn_noise, gate_convs, gate_targets):
    tf, keras = mods[0], mods[1]
    bn_ids = {id(bn) for bn in bns}
    gate_ids = {id(c) for c in gate_convs}
    visited = set()

    def bn_wrapper(inherited):
        def call(self, inputs, *args, **kwargs):
            if id(self) in bn_ids and id(self) not in visited:
                visited.add(id(self))
                x = inputs.numpy().astype(np.float64).reshape(-1, inputs.shape[-1])
                mean, var = x.mean(axis=0), x.var(axis=0)
                var = np.maximum(var, max(BN_MIN_VAR, BN_REL_VAR_FLOOR * np.median(var)))
                noise = bn_noise[id(self)]
                self.moving_mean.assign((mean + noise["z"] * np.sqrt(var)).astype(np.float32))
                self.moving_variance.assign((var * np.exp(noise["w"])).astype(np.float32))
            kwargs["training"] = False
            return inherited(self, inputs, *args, **kwargs)
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

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched_call(keras.layers.BatchNormalization, bn_wrapper))
        for cls in {type(c) for c in gate_convs}:
            stack.enter_context(_patched_call(cls, gate_wrapper))
        b, _, h, w, _ = clip.shape
        inputs = {"image": tf.constant(clip),
                  **{k: tf.convert_to_tensor(v) for k, v in
                     model.backbone.init_states([b, 1, h, w, 3]).items()}}
        model(inputs, training=False)
    missing = (bn_ids | gate_ids) - visited
    if missing:
        raise RuntimeError(f"calibration did not reach {len(missing)} layers")


def stream_serving_fn(tf, model, height, width):
    """tests/oracle.py's stream_serving_fn (non-square frames allowed)."""
    zero_states = {k: np.asarray(v) for k, v in
                   model.backbone.init_states([1, 1, height, width, 3]).items()}
    specs = {name: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=name)
             for name, v in zero_states.items()}
    specs["image"] = tf.TensorSpec([1, 1, height, width, 3], tf.float32, name="image")

    @tf.function(input_signature=[specs])
    def serve(inputs):
        logits, new_states = model(inputs, training=False)
        return {"logits": logits, **new_states}

    return serve, zero_states


# ---------------------------------------------------------------------------------------------
# Converting (tests/int8_support.py: _convert_variant).

def representative_samples(tf, serve, zero_states, height, width):
    """The stateful representative dataset (tests/int8_support.py): smooth random clips
    streamed frame by frame through the float model, each frame with the states it has in
    streaming.  Computed once per model and reused by each conversion of it."""
    samples = []
    rng = np.random.default_rng(CALIB_SEED)
    for _ in range(CALIB_CLIPS):
        base = rng.random((1, 1, height, width, 3), dtype=np.float32)
        states = dict(zero_states)
        for _t in range(CALIB_FRAMES):
            frame = np.clip(base + 0.15 * rng.standard_normal(base.shape), 0, 1)
            frame = frame.astype(np.float32)
            samples.append({"image": frame, **states})
            out = serve({"image": tf.constant(frame),
                         **{k: tf.constant(v) for k, v in states.items()}})
            states = {k: np.asarray(out[k]) for k in states}
    return samples


def convert(tf, model, concrete, samples, io, per_channel):
    """The int8 flatbuffer and the converter settings used (tests/int8_support.py)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if not per_channel:
        if not hasattr(converter, "_experimental_disable_per_channel"):
            raise NotImplementedError("this release's converter has no "
                                      "_experimental_disable_per_channel")
        converter._experimental_disable_per_channel = True
    settings = dict(optimizations=["DEFAULT"], supported_ops=["TFLITE_BUILTINS_INT8"],
                    representative_dataset=dict(clips=CALIB_CLIPS, frames=CALIB_FRAMES,
                                                seed=CALIB_SEED, stateful=True),
                    inference_input_type="int8" if io == "int8" else "float32",
                    inference_output_type="int8" if io == "int8" else "float32")
    for attr in ("experimental_new_converter", "experimental_new_quantizer",
                 "_experimental_disable_per_channel"):
        if hasattr(converter, attr):
            settings[attr] = bool(getattr(converter, attr))
    return converter.convert(), settings


def _model_key(job):
    return (job["model"], job["variant"], bool(job["positional_encoding"]),
            job.get("height", HEIGHT), job.get("width", WIDTH))


def run_model_jobs(mods, jobs, out_dir, results):
    """Build the float model the jobs share once, then convert it once per job."""
    tf = mods[0]
    model, height, width = jobs[0]["model"], jobs[0].get("height", HEIGHT), \
        jobs[0].get("width", WIDTH)
    t0 = time.time()
    try:
        model = build_model(mods, REDUCED_ID if model == "reduced" else model,
                            jobs[0]["variant"], jobs[0]["positional_encoding"])
        serve, zero_states = stream_serving_fn(tf, model, height, width)
        concrete = serve.get_concrete_function()
        samples = representative_samples(tf, serve, zero_states, height, width)
    except Exception as e:
        for job in jobs:
            results[job["file"]] = dict(skipped=_why(e))
        return
    built = round(time.time() - t0, 1)
    print(f"[{tf.__version__}] built {_model_key(jobs[0])} in {built} s", flush=True)
    for job in jobs:
        t1 = time.time()
        try:
            data, settings = convert(tf, model, concrete, samples, job["io"], job["per_channel"])
        except Exception as e:      # a combination this release cannot convert: recorded
            results[job["file"]] = dict(skipped=_why(e))
            continue
        path = os.path.join(out_dir, job["file"])
        with open(path + ".part", "wb") as f:
            f.write(data)
        os.replace(path + ".part", path)
        seconds = round(time.time() - t1, 1)
        print(f"[{tf.__version__}] {job['file']}: {len(data):,} bytes, {seconds} s", flush=True)
        results[job["file"]] = dict(settings=settings, states=len(zero_states),
                                    build_seconds=built, convert_seconds=seconds)


def _why(e):
    traceback.print_exc()
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:500]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", required=True, help="a JSON file: the list of files to convert")
    args = ap.parse_args(argv)
    jobs = json.load(open(args.jobs))
    from importlib.metadata import version
    mods = lean_import_movinet()
    tf, movinet = mods[0], mods[2]
    register_reduced_spec(movinet)
    info = dict(tensorflow=tf.__version__, tf_models_official=version("tf-models-official"),
                keras=("tf_keras " + version("tf-keras")) if mods[1].__name__.startswith("tf_keras")
                else "tf.keras " + version("keras"),
                numpy=np.__version__, python=sys.version.split()[0], jobs={})
    groups = {}
    for job in jobs:
        groups.setdefault(_model_key(job), []).append(job)
    for group in groups.values():
        run_model_jobs(mods, group, args.out, info["jobs"])
        mods[1].backend.clear_session()
    with open(os.path.join(args.out, "build.json"), "w") as f:
        json.dump(info, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
