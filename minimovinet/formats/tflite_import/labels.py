"""The labels the walk gives the operators it claims.

Conv labels are `structure.ConvParams.layer` ('block1_layer0/expansion/conv', 'stem/conv', ...):
the int8 model finds its weights under them.  A block's (group, layer) position is known only
once the whole sequence of blocks has matched one architecture, so during the walk block `i`
is called '@i' ('@3/expansion/conv', state '@3_stream_buffer'); `architecture.name_blocks`
renames it, and error messages spell it 'block #3' (`display`).

The labels of the other operators (the activation after a conv, the stream buffer, the SE
pool, ReZero, the residual add, ...) are op labels, not parameter names: they are defined here.
"""
from __future__ import annotations

import re
from typing import Dict

from ...config import ModelConfig
from ...structure import NetworkPlan, plan

# The convs of a block, by their `structure.BlockPlan` field.
BLOCK_CONV_ROLES = ("expansion", "feature", "feature_temporal", "se_reduce", "se_expand",
                    "projection", "skip")


def _conv_suffixes(net: NetworkPlan) -> Dict[str, str]:
    """Block conv role -> its label after the block prefix ('expansion' -> 'expansion/conv')."""
    suffixes: Dict[str, str] = {}
    for block in net.blocks:
        for role in BLOCK_CONV_ROLES:
            conv = getattr(block, role)
            if conv is not None:
                suffixes.setdefault(role, conv.layer[len(block.prefix) + 1:])
    assert set(suffixes) == set(BLOCK_CONV_ROLES), sorted(suffixes)
    return suffixes


# A stream model with squeeze-excitation: every conv role occurs in some block.  The labels do
# not depend on the architecture beyond the block prefix.
_NET = plan(ModelConfig.from_variant("a0", "stream"))
CONV_SUFFIX = _conv_suffixes(_NET)
STEM_CONV = _NET.stem.layer
HEAD_PROJECT_CONV = _NET.head_project.layer
CLASSIFIER_HIDDEN_CONV = _NET.classifier_hidden.layer
CLASSIFIER_LOGITS_CONV = _NET.classifier_logits.layer

# Ops outside the blocks.
INPUT_QUANTIZE = "input/quantize"       # float image -> int8
OUTPUT_DEQUANTIZE = "output/dequantize"  # int8 logits -> float
OUTPUT_VIEW = "output"                  # int8 logits: the RESHAPE the signature names
HEAD_POOL = "head/pool"                 # the head's cumulative global average pool
UNCLAIMED = "reshape"                   # a RESHAPE no matched op reads through
# Ops inside a block (after its '@i/' or 'block{g}_layer{l}/' prefix).
STREAM_BUFFER = "feature/stream_buffer"  # CONCATENATION(state, frame) and the next state
SE_POOL = "se/pool"                     # frame mean, running sum, divide by frame count
SE_CONCAT = "se/concat"                 # CONCATENATION(cumulative mean, frame mean)
SE_GATE = "se/expand/gate"              # MUL(1/6): relu6(x + 3) / 6 = hard sigmoid
SE_SCALE = "se/scale"                   # MUL(gate, features)
REZERO = "rezero"                       # MUL(rezero constant)
RESIDUAL_ADD = "add"                    # ADD(skip)
SKIP_POOL = "skip/pool"                 # AVERAGE_POOL 3x3/2 before the skip conv
ACT = "act"                             # an activation op after a conv


def block_name(index: int) -> str:
    """The provisional name of block `index`: '@3'."""
    return f"@{index}"


def block_label(index: int, suffix: str) -> str:
    """The provisional label of an op of block `index`: '@3/rezero'."""
    return f"{block_name(index)}/{suffix}"


def block_conv_label(index: int, role: str) -> str:
    """The provisional label of conv `role` of block `index`: '@3/expansion/conv'."""
    return block_label(index, CONV_SUFFIX[role])


def block_state(index: int, kind: str) -> str:
    """The provisional name of a state of block `index`: '@3_stream_buffer'."""
    return f"{block_name(index)}_{kind}"


def act_label(conv_label: str) -> str:
    """The label of the activation ops after the conv labelled `conv_label`."""
    base = conv_label[:-len("/conv")] if conv_label.endswith("/conv") else conv_label
    return f"{base}/{ACT}"


def display(text: str) -> str:
    """A label, state name or message with provisional block indices spelled out."""
    return re.sub(r"@(\d+)", lambda m: f"block #{m.group(1)}", text)
