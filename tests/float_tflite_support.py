"""Helpers of tests/test_float_tflite.py: float TFLite MoViNet stream files exported with the
TensorFlow in the venv from seeded random official models, and LiteRT runs of them.

* `reduced_config(positional_encoding)`: a small A0-like stream architecture (SE, hard swish;
  one block per group) as a `ModelConfig` with its own `block_spec`; with positional encoding
  it stands for A3..A5 (the official stream models with `use_positional_encoding`).
* `export_stream_tflites(cfg, {form: path})`: the official model of `cfg` with seeded random
  weights (as `oracle.build_official`, batch 1, HEIGHT x WIDTH: not square), traced with the
  stream signature (`image` [1, 1, H, W, 3] plus every state in; `logits` plus every state
  out) and converted to each `form`: 'float32' (no optimization), 'float16' (float16 weights:
  `supported_types=[tf.float16]`) or 'dynamic-range' (`optimizations=[DEFAULT]`, no
  representative dataset: int8 weights, float activations).
* `stream_litert(path, frames)`: LiteRT's signature runner on `frames`, one per call, its
  own states fed back: [(logits, states)] per step.
"""
from __future__ import annotations

import os

import numpy as np

HEIGHT, WIDTH = 64, 80            # not square: height and width must not be mixed up
NUM_CLASSES = 7
SEED = 5
FORMS = ("float32", "float16", "dynamic-range")


def reduced_config(positional_encoding: bool):
    """The reduced stream architecture: every kind of block (conv skip with and without the
    stride's pool, identity skip; kt 1, 3 and 5) in five one-block groups."""
    from minimovinet.config import CUSTOM, GroupSpec, HeadSpec, ModelConfig, StemSpec
    spec = (StemSpec(8, (1, 3, 3), (1, 2, 2)),
            (GroupSpec(8, (24,), ((1, 5, 5),), ((1, 2, 2),)),
             GroupSpec(16, (40,), ((3, 3, 3),), ((1, 2, 2),)),
             GroupSpec(16, (48,), ((5, 3, 3),), ((1, 1, 1),)),
             GroupSpec(24, (64,), ((3, 3, 3),), ((1, 2, 2),))),
            HeadSpec(48, 64))
    return ModelConfig.from_variant(CUSTOM, "stream", num_classes=NUM_CLASSES,
                                    use_positional_encoding=positional_encoding,
                                    block_spec=spec)


def _register_official_spec(cfg) -> None:
    """Make the official `movinet.Movinet(model_id='custom')` build `cfg.block_spec`."""
    from official.projects.movinet.modeling import movinet
    stem, groups, head = cfg.spec
    specs = [movinet.StemSpec(filters=stem.filters, kernel_size=stem.kernel,
                              strides=stem.stride)]
    for g in groups:
        specs.append(movinet.MovinetBlockSpec(base_filters=g.out_filters,
                                              expand_filters=g.expand_filters,
                                              kernel_sizes=g.kernels, strides=g.strides))
    specs.append(movinet.HeadSpec(project_filters=head.project_filters,
                                  head_filters=head.hidden_filters))
    movinet.BLOCK_SPECS[cfg.model_id] = tuple(specs)


def export_stream_tflites(cfg, paths, height: int = HEIGHT, width: int = WIDTH,
                          seed: int = SEED) -> None:
    """Write the stream TFLite files {form: path} of the seeded random official model of
    `cfg` (built and traced once; each file written to a temporary name, then renamed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import oracle
    from conftest import need_tensorflow
    tf = need_tensorflow("the float TFLite test files are exported with TensorFlow")
    if cfg.block_spec is not None:
        _register_official_spec(cfg)
    # `oracle.build_official` at a fixed size, calibrated on clips of that size
    model = oracle.build_raw(cfg, batch=1, height=height, width=width)
    oracle.randomize_weights(model, seed, cfg=cfg, calibration_shape=(1, 8, height, width, 3))
    zero_states = oracle.init_states(model, cfg, 1, height, width)
    specs = {name: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=name)
             for name, v in zero_states.items()}
    specs["image"] = tf.TensorSpec([1, 1, height, width, 3], tf.float32, name="image")

    @tf.function(input_signature=[specs])
    def serve(inputs):
        logits, new_states = model(inputs, training=False)
        return {"logits": logits, **new_states}

    concrete = serve.get_concrete_function()
    # The converter saves its trackable object as a SavedModel (that gives the file its
    # signature): a plain module holding the variables saves in seconds, the Keras model in
    # tens of seconds.
    holder = tf.Module()
    holder.weights = list(model.variables)
    for form, path in paths.items():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
        if form == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif form == "dynamic-range":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif form != "float32":
            raise ValueError(form)
        data = converter.convert()
        tmp = f"{path}.{os.getpid()}.part"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def test_frames(steps: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 17):
    """A smooth random clip [1, steps, H, W, 3] in [0, 1]: a drifting image plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.random((1, 1, height, width, 3), dtype=np.float32)
    frames = [np.clip(base + 0.1 * t / steps + 0.1 * rng.standard_normal(base.shape), 0, 1)
              for t in range(steps)]
    return np.concatenate(frames, axis=1).astype(np.float32)


def stream_litert(path, frames, resolver: str = "builtin"):
    """LiteRT on `frames` [1, T, H, W, 3], one frame per call from zero states, each call's
    output states fed to the next: [(logits, {state: value})] per step."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kwargs = dict(model_path=str(path), num_threads=1)
    if resolver == "builtin":          # TFLite's built-in kernels, no XNNPACK delegate
        kwargs["experimental_op_resolver_type"] = \
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = Interpreter(**kwargs).get_signature_runner()
    states = {name: np.zeros(d["shape"], d["dtype"])
              for name, d in runner.get_input_details().items() if name != "image"}
    steps = []
    for t in range(frames.shape[1]):
        out = runner(image=frames[:, t:t + 1], **states)
        states = {name: np.array(out[name]) for name in states}
        steps.append((np.array(out["logits"]), dict(states)))
    return steps
