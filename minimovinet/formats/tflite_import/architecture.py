"""Which MoViNet the walked graph is: the `ModelConfig` whose blocks it matched, and the
final names of its blocks.

The sequence of blocks (widths, kernels, strides), the stem and the head are compared with the
A0..A5 specs (config.BLOCK_SPECS): an equal one gives the model id.  Any other sequence (a
reduced or modified MoViNet) becomes a config of its own (model_id "custom", its
`block_spec` read off the graph): blocks are grouped as the state names say, else by width.
The activations, the SE and its positional encoding give the variant settings.  Then the
blocks get their (group, layer) names from `structure.plan`, and every conv its
`ConvParams.layer` label.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from ...config import BLOCK_SPECS, CUSTOM, GroupSpec, HeadSpec, ModelConfig, StemSpec
from ...structure import NetworkPlan, plan
from .labels import block_label
from .walk import GraphMismatch, Walk

# (activation, se_type, classifier activation) of the official presets
VARIANT_SETTINGS = {("relu6", "none", "relu6"): "mobile",
                    ("hard_swish", "2plus3d", "swish"): "stream"}


def _settings(w: Walk) -> Tuple[str, str, str]:
    """(activation, se_type, classifier activation) as the walk found them."""
    acts = set(w.acts.values())
    if len(acts) != 1:
        raise GraphMismatch(f"mixed block activations {sorted(acts)}")
    activation = acts.pop()
    se = {b["se"] for b in w.blocks}
    if len(se) != 1:
        raise GraphMismatch("squeeze-excitation in some blocks only")
    se_type = "2plus3d" if se.pop() else "none"
    if len({"pos_scale" in b for b in w.blocks}) != 1:
        raise GraphMismatch("a positional encoding in some blocks only")
    if w.stem_act != activation:
        raise GraphMismatch(f"stem activation {w.stem_act}, blocks {activation}")
    if w.classifier_act == "linear":
        raise GraphMismatch("the classifier's hidden layer has no activation")
    return activation, se_type, w.classifier_act


def _positional(w: Walk) -> bool:
    """The blocks add a positional encoding in their SE (A3-A5 stream)."""
    return any("pos_scale" in b for b in w.blocks)


def _block_shapes(w: Walk):
    """Per block (cin, expand, cout, kernel, stride), as `ModelConfig.layers` gives them."""
    return [(b["cin"], b["expand"], b["cout"], tuple(b["kernel"]), tuple(b["stride"]))
            for b in w.blocks]


def _same_architecture(w: Walk, cfg: ModelConfig, found) -> bool:
    stem, head = cfg.stem, cfg.head
    expected = [(cin, e, cout, k, s) for _, _, cin, e, cout, k, s in cfg.layers()]
    return (expected == found and stem.filters == w.stem["filters"]
            and stem.kernel == w.stem["kernel"] and stem.stride == w.stem["stride"]
            and head.project_filters == w.head["project"]
            and head.hidden_filters == w.head["hidden"])


def infer_config(w: Walk) -> ModelConfig:
    """The config of the walked graph; names its blocks (`name_blocks`)."""
    found = _block_shapes(w)
    activation, se_type, classifier = _settings(w)
    for model_id in BLOCK_SPECS:
        cfg = ModelConfig(model_id=model_id, variant="stream", causal=True,
                          conv_type="2plus1d", se_type=se_type, activation=activation,
                          gating_activation="hard_sigmoid", classifier_activation=classifier,
                          use_positional_encoding=_positional(w), num_classes=w.num_classes)
        if _same_architecture(w, cfg, found):
            name_blocks(w, cfg)
            variant = VARIANT_SETTINGS.get((activation, se_type, classifier), "custom")
            return dataclasses.replace(cfg, variant=variant)
    cfg = ModelConfig(model_id=CUSTOM, variant="stream", causal=True, conv_type="2plus1d",
                      se_type=se_type, activation=activation, gating_activation="hard_sigmoid",
                      classifier_activation=classifier, use_positional_encoding=_positional(w),
                      num_classes=w.num_classes, block_spec=_custom_spec(w, found))
    assert _same_architecture(w, cfg, found)
    name_blocks(w, cfg)
    variant = VARIANT_SETTINGS.get((activation, se_type, classifier), "custom")
    return dataclasses.replace(cfg, variant=variant)


def _block_positions(w: Walk, found):
    """(group, layer) of every block: from the states it reads when it has any, else the
    previous block's group when the width stays, the next group when it changes."""
    positions = []
    for index, (_, _, cout, _, _) in enumerate(found):
        if index == 0:
            guess = (0, 0)
        else:
            g, l = positions[-1]
            guess = (g, l + 1) if cout == found[index - 1][2] else (g + 1, 0)
        known = w.block_states.get(index, guess)
        allowed = {(0, 0)} if index == 0 else {(positions[-1][0], positions[-1][1] + 1),
                                              (positions[-1][0] + 1, 0)}
        if known not in allowed:
            raise GraphMismatch(f"block #{index} reads the states of block{known[0]}_layer"
                                f"{known[1]}, which cannot follow the blocks before it")
        positions.append(known)
    return positions


def _custom_spec(w: Walk, found):
    """(StemSpec, groups, HeadSpec) of an architecture that is none of A0..A5."""
    groups = {}
    for (g, _), (_, expand, cout, kernel, stride) in zip(_block_positions(w, found), found):
        groups.setdefault(g, []).append((expand, cout, kernel, stride))
    specs = []
    for g, layers in sorted(groups.items()):
        widths = {cout for _, cout, _, _ in layers}
        if len(widths) != 1:
            raise GraphMismatch(f"the blocks of group {g} project to different widths "
                                f"{sorted(widths)}")
        specs.append(GroupSpec(widths.pop(), tuple(e for e, _, _, _ in layers),
                               tuple(k for _, _, k, _ in layers),
                               tuple(s for _, _, _, s in layers)))
    stem = StemSpec(w.stem["filters"], tuple(w.stem["kernel"]), tuple(w.stem["stride"]))
    return stem, tuple(specs), HeadSpec(w.head["project"], w.head["hidden"])


def name_blocks(w: Walk, cfg: ModelConfig) -> None:
    """Give the blocks their (group, layer) names, check the states they read, and label
    each block conv with its `structure.ConvParams.layer`."""
    net = plan(cfg)
    for index, block in enumerate(net.blocks):
        known = w.block_states.get(index)
        if known is not None and known != (block.g, block.l):
            raise GraphMismatch(f"block #{index} ({block.prefix} of {cfg.model_id}) reads "
                                f"the states of block{known[0]}_layer{known[1]}")
        w.blocks[index].update(g=block.g, l=block.l)
        provisional, final = block_label(index, ""), block.prefix + "/"
        for op_index, layer in w.layer_of.items():
            if layer.startswith(provisional):
                w.layer_of[op_index] = final + layer[len(provisional):]
        for name, layer in w.used_states.items():
            if layer.startswith(provisional):
                w.used_states[name] = final + layer[len(provisional):]
    _label_block_convs(w, net, cfg)


def _label_block_convs(w: Walk, net: NetworkPlan, cfg: ModelConfig) -> None:
    """Each block conv gets its label from the plan; a conv the plan does not have (or a
    conv of the plan the graph does not have) is refused."""
    for op_index, (index, role) in w.block_convs.items():
        conv = getattr(net.blocks[index], role)
        if conv is None:
            raise GraphMismatch(f"block #{index} ({net.blocks[index].prefix} of "
                                f"{cfg.model_id}) has a {role} conv the architecture does "
                                f"not have")
        w.layer_of[op_index] = conv.layer
    labelled = {w.layer_of[i] for i in w.block_convs}
    for block in net.blocks:
        for conv in block.convs():
            if conv.layer not in labelled:
                raise GraphMismatch(f"{conv.layer} of {cfg.model_id} is missing from the "
                                    f"graph")
