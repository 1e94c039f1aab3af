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
from ..data import kinetics600_labels
from ..errors import CheckpointError
from ..structure import ConvParams, param_specs, plan

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
    """minimovinet parameter name -> (official checkpoint key, converter from official array).

    The minimovinet names come from `structure.plan(cfg)`; this function only says where the
    official model keeps each conv."""
    two_d = cfg.conv_type == "2plus1d"
    conv = "_conv/_conv" if two_d else "_conv"     # MobileConv2D wraps one more layer
    specs = param_specs(cfg)
    mapping: "OrderedDict[str, Tuple[str, Callable]]" = OrderedDict()

    def reshape_to(name):
        shape = specs[name]
        return lambda a: np.reshape(a, shape)

    def depthwise_2d(name):
        shape = specs[name]   # [kt, kh, kw, C]; official [kh, kw, C, 1] or [kt, 1, C, 1]
        return lambda a: np.reshape(a[..., 0], shape)

    def add(name, key, convert=reshape_to):
        mapping[name] = (key + SUFFIX, convert(name))

    def add_conv(params: ConvParams, kernel_key, bn_key=None, bias_key=None,
                 convert=reshape_to):
        add(params.kernel, kernel_key, convert)
        if params.bn is not None:
            for field, name in params.bn_names().items():
                add(name, f"{bn_key}/{field}")
        if params.bias is not None:
            add(params.bias, bias_key)

    net = plan(cfg)
    stem = BACKBONE.format(0) + "_stem/"
    add_conv(net.stem, stem + f"{conv}/kernel", stem + "_batch_norm")
    for index, block in enumerate(net.blocks, start=1):
        key = BACKBONE.format(index)
        add_conv(block.expansion, key + f"_expansion/{conv}/kernel",
                 key + "_expansion/_batch_norm")
        if two_d:
            add_conv(block.feature, key + "_feature/_conv/_conv/depthwise_kernel",
                     key + "_feature/_batch_norm", convert=depthwise_2d)
            if block.feature_temporal is not None:
                add_conv(block.feature_temporal,
                         key + "_feature/_conv_temporal/_conv/depthwise_kernel",
                         key + "_feature/_batch_norm_temporal", convert=depthwise_2d)
        else:
            add_conv(block.feature, key + "_feature/_conv/kernel",      # [kt, kh, kw, 1, C]
                     key + "_feature/_batch_norm")
        for params, official in ((block.se_reduce, "_se_reduce"), (block.se_expand, "_se_expand")):
            if params is not None:
                add_conv(params, key + f"_attention/{official}/{conv}/kernel",
                         bias_key=key + f"_attention/{official}/{conv}/bias")
        if block.pos_scale is not None:
            add(block.pos_scale, key + "_attention/_pos_encoding/_rezero/scale")
        add_conv(block.projection, key + f"_projection/{conv}/kernel",
                 key + "_projection/_batch_norm")
        if block.skip is not None:
            add_conv(block.skip, key + f"_skip/_projection/{conv}/kernel",
                     key + "_skip/_projection/_batch_norm")
        add(block.rezero, key + "_mobile_bottleneck/_rezero/scale")
    head = BACKBONE.format(len(net.blocks) + 1)
    add_conv(net.head_project, head + f"_project/{conv}/kernel", head + "_project/_batch_norm")
    add_conv(net.classifier_hidden, CLASSIFIER + f"_head/{conv}/kernel",
             bias_key=CLASSIFIER + f"_head/{conv}/bias")
    add_conv(net.classifier_logits, CLASSIFIER + f"_classifier/{conv}/kernel",
             bias_key=CLASSIFIER + f"_classifier/{conv}/bias")
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
    if class_names is None and cfg.num_classes == len(kinetics600_labels()):
        class_names = kinetics600_labels()       # the official models' classes
    if class_names is not None and len(class_names) != cfg.num_classes:
        raise CheckpointError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    save(output, cfg, params, class_names, source=source)
    return f"{note}: {len(params)} parameters -> {os.fspath(output)}"
