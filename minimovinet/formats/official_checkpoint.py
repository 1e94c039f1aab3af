"""Convert official Model Garden MoViNet weights into the minimovinet format.

The official checkpoints (`tf.train.Checkpoint(model=MovinetClassifier)`) name variables by
their object path, e.g.

    model/layer_with_weights-0/layer_with_weights-3/_feature/_conv_temporal/_conv/depthwise_kernel/.ATTRIBUTES/VARIABLE_VALUE

`layer_with_weights-0` is the backbone, whose `layer_with_weights-<i>` are the stem (i = 0),
the blocks in order (1..L) and the head (L + 1); `layer_with_weights-1` is the classifier.
`official_names(cfg)` spells out, for every minimovinet parameter, the official key and the
reshape from the official layout to ours.  Converting checks that every expected key is there
with the expected shape and that nothing is left over.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..config import MODEL_IDS, VARIANTS, ModelConfig
from ..errors import CheckpointError
from ..structure import BN_FIELDS, has_skip_projection, param_specs

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
BACKBONE = "model/layer_with_weights-0/layer_with_weights-{}/"
CLASSIFIER = "model/layer_with_weights-1/"

# Variables a checkpoint may hold that are not model weights (training bookkeeping).
IGNORED_KEYS = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter", "optimizer", "iteration",
                "learning_rate", "global_step")

# Official layout -> minimovinet layout, by kind of tensor.  These are the tensors that need
# reshaping; nothing is transposed (TF kernels are already [..., Cin, Cout] channels last).
#   pointwise  [1, 1, Cin, Cout] (2D) or [1, 1, 1, Cin, Cout] (3D)  -> [Cin, Cout]
#   depthwise  [kh, kw, C, 1] (2D, spatial) -> [1, kh, kw, C]
#              [kt, 1, C, 1] (2D, temporal) -> [kt, 1, 1, C]
#              [kt, kh, kw, 1, C] (3D, grouped) -> [kt, kh, kw, C]
#   stem       [kh, kw, 3, C] (2D) -> [1, kh, kw, 3, C];  [1, kh, kw, 3, C] (3D) unchanged


def official_names(cfg: ModelConfig) -> "OrderedDict[str, Tuple[str, Callable]]":
    """minimovinet parameter name -> (official checkpoint key, converter from official array)."""
    two_d = cfg.conv_type == "2plus1d"
    conv = "_conv/_conv" if two_d else "_conv"     # MobileConv2D wraps one more layer
    specs = param_specs(cfg)
    mapping: "OrderedDict[str, Tuple[str, Callable]]" = OrderedDict()

    def reshape_to(name):
        shape = specs[name]
        return lambda a: np.reshape(a, shape)

    def add(name, key):
        mapping[name] = (key + SUFFIX, reshape_to(name))

    def add_bn(name_prefix, key_prefix):
        for field in BN_FIELDS:
            add(f"{name_prefix}/{field}", f"{key_prefix}/{field}")

    def depthwise_2d(name):
        shape = specs[name]   # [kt, kh, kw, C]; official [kh, kw, C, 1] or [kt, 1, C, 1]
        return lambda a: np.reshape(a[..., 0], shape)

    stem = BACKBONE.format(0) + "_stem/"
    add("stem/conv/kernel", stem + f"{conv}/kernel")
    add_bn("stem/bn", stem + "_batch_norm")

    index = 1
    for g, l, cin, expand, cout, kernel, stride in cfg.layers():
        p = f"block{g}_layer{l}"
        key = BACKBONE.format(index)
        index += 1
        add(f"{p}/expansion/conv/kernel", key + f"_expansion/{conv}/kernel")
        add_bn(f"{p}/expansion/bn", key + "_expansion/_batch_norm")
        if two_d:
            name = f"{p}/feature/conv/kernel"
            mapping[name] = (key + "_feature/_conv/_conv/depthwise_kernel" + SUFFIX,
                             depthwise_2d(name))
            if kernel[0] > 1:
                name = f"{p}/feature/conv_temporal/kernel"
                mapping[name] = (key + "_feature/_conv_temporal/_conv/depthwise_kernel" + SUFFIX,
                                 depthwise_2d(name))
                add_bn(f"{p}/feature/bn_temporal", key + "_feature/_batch_norm_temporal")
        else:
            add(f"{p}/feature/conv/kernel", key + "_feature/_conv/kernel")   # [kt,kh,kw,1,C]
        add_bn(f"{p}/feature/bn", key + "_feature/_batch_norm")
        if cfg.se_type != "none":
            for part, official in (("reduce", "_se_reduce"), ("expand", "_se_expand")):
                add(f"{p}/se/{part}/kernel", key + f"_attention/{official}/{conv}/kernel")
                add(f"{p}/se/{part}/bias", key + f"_attention/{official}/{conv}/bias")
            if cfg.uses_positional_encoding:
                add(f"{p}/se/pos_encoding/scale", key + "_attention/_pos_encoding/_rezero/scale")
        add(f"{p}/projection/conv/kernel", key + f"_projection/{conv}/kernel")
        add_bn(f"{p}/projection/bn", key + "_projection/_batch_norm")
        if has_skip_projection(cin, cout, stride):
            add(f"{p}/skip/conv/kernel", key + f"_skip/_projection/{conv}/kernel")
            add_bn(f"{p}/skip/bn", key + "_skip/_projection/_batch_norm")
        add(f"{p}/rezero/scale", key + "_mobile_bottleneck/_rezero/scale")

    head = BACKBONE.format(index)
    add("head/project/conv/kernel", head + f"_project/{conv}/kernel")
    add_bn("head/project/bn", head + "_project/_batch_norm")
    add("classifier/hidden/kernel", CLASSIFIER + f"_head/{conv}/kernel")
    add("classifier/hidden/bias", CLASSIFIER + f"_head/{conv}/bias")
    add("classifier/logits/kernel", CLASSIFIER + f"_classifier/{conv}/kernel")
    add("classifier/logits/bias", CLASSIFIER + f"_classifier/{conv}/bias")
    assert set(mapping) == set(specs), "official name map out of sync with param_specs"
    return OrderedDict((name, mapping[name]) for name in specs)


def _is_ignored(key: str) -> bool:
    return any(part in key for part in IGNORED_KEYS) or not key.startswith("model/")


def params_from_official(arrays: Mapping[str, np.ndarray], cfg: ModelConfig,
                         source: str = "checkpoint") -> Dict[str, np.ndarray]:
    """Map official checkpoint arrays onto minimovinet parameters, checking names and shapes."""
    mapping = official_names(cfg)
    specs = param_specs(cfg)
    weights = {k: v for k, v in arrays.items() if not _is_ignored(k)}
    params = {}
    for name, (key, convert) in mapping.items():
        if key not in weights:
            raise CheckpointError(
                f"{source}: does not match model {cfg.model_id} variant {cfg.variant}: "
                f"variable {key!r} (for {name}) is missing")
        value = np.asarray(weights[key])
        expected = int(np.prod(specs[name])) if specs[name] else 1
        if value.size != expected:
            raise CheckpointError(
                f"{source}: does not match model {cfg.model_id} variant {cfg.variant}: "
                f"variable {key!r} has shape {tuple(value.shape)}, expected "
                f"{expected} values for {name} {tuple(specs[name])}")
        params[name] = convert(value).astype(np.float32)
    used = {key for key, _ in mapping.values()}
    left_over = sorted(k for k in weights if k not in used)
    if left_over:
        raise CheckpointError(
            f"{source}: does not match model {cfg.model_id} variant {cfg.variant}: "
            f"{len(left_over)} variable(s) left over, first {left_over[0]!r}")
    return params


def infer_config(arrays: Mapping[str, np.ndarray], num_classes: Optional[int] = None,
                 model_id: Optional[str] = None, variant: Optional[str] = None
                 ) -> Tuple[ModelConfig, str]:
    """Find the (model id, variant) whose variables match `arrays` exactly.

    Returns the config and a sentence saying what was inferred.  Raises CheckpointError naming
    the closest candidate's first mismatch when nothing matches.
    """
    weights = {k: v for k, v in arrays.items() if not _is_ignored(k)}
    logits_key = next((k for k in weights if k.startswith(CLASSIFIER + "_classifier/")
                       and k.endswith("bias" + SUFFIX)), None)
    if num_classes is None:
        if logits_key is None:
            raise CheckpointError("no classifier variables found: not a MovinetClassifier "
                                  "checkpoint (expected keys under 'model/layer_with_weights-1/')")
        num_classes = int(np.asarray(weights[logits_key]).size)
    ids = [model_id] if model_id else list(MODEL_IDS)
    variants = [variant] if variant else list(VARIANTS)
    matches, first_error = [], None
    for mid in ids:
        for var in variants:
            cfg = ModelConfig.from_variant(mid, var, num_classes=num_classes)
            try:
                params_from_official(weights, cfg)
            except CheckpointError as e:
                first_error = first_error or e
                continue
            matches.append(cfg)
    if not matches:
        if model_id and variant:
            raise first_error
        raise CheckpointError(f"the variables match no MoViNet model id in {ids} and variant "
                              f"in {variants}; first mismatch: {first_error}")
    cfg = matches[0]
    guessed = [what for what, given in (("model id", model_id), ("variant", variant)) if not given]
    note = (f"inferred {' and '.join(guessed)} from the variables: {cfg.model_id} {cfg.variant}"
            if guessed else f"{cfg.model_id} {cfg.variant}")
    if len(matches) > 1:
        # 'base' and 'stream3d' have the same variables: only the caller knows which it is.
        others = ", ".join(f"{c.model_id} {c.variant}" for c in matches[1:])
        note += f" (the same variables also fit: {others}; pass --variant to choose)"
    return cfg, note


def convert_arrays(arrays: Mapping[str, np.ndarray], output, model_id: Optional[str] = None,
                   variant: Optional[str] = None, num_classes: Optional[int] = None,
                   class_names: Optional[Sequence[str]] = None, source: str = "") -> str:
    """Write the h5 model for official `arrays`; returns a one-line note of what was done."""
    from .h5 import save
    if model_id and variant:
        cfg = ModelConfig.from_variant(model_id, variant, **(
            {"num_classes": num_classes} if num_classes else {}))
        if num_classes is None:
            logits = [k for k in arrays if k.startswith(CLASSIFIER + "_classifier/")
                      and k.endswith("bias" + SUFFIX)]
            if logits:
                cfg = ModelConfig.from_variant(model_id, variant,
                                               num_classes=int(np.asarray(arrays[logits[0]]).size))
        note = f"{model_id} {variant}"
    else:
        cfg, note = infer_config(arrays, num_classes, model_id, variant)
    params = params_from_official(arrays, cfg, source=source or "checkpoint")
    if class_names is not None and len(class_names) != cfg.num_classes:
        raise CheckpointError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    save(output, cfg, params, class_names, source=source)
    return f"{note}: {len(params)} parameters -> {os.fspath(output)}"
