"""The activation after a conv: fused into it, a HARD_SWISH op, or LOGISTIC + MUL (swish).

MoViNet's activations reach the int8 graph in three forms: relu6 (and relu) fused into the
conv, hard swish as its own op, swish as x * sigmoid(x).  Anything else after a conv is left
for the next matcher ('linear').
"""
from __future__ import annotations

from typing import Tuple

from ..tflite import Operator
from .labels import act_label
from .walk import GraphMismatch, Walk

FUSED = {"RELU6": "relu6", "RELU": "relu"}
CONV_ACTIVATIONS = ("relu6", "hard_swish", "relu", "swish")


def fused_activation(op: Operator) -> str:
    """The op's fused activation ('NONE' for ops without one)."""
    return getattr(op.options, "fused_activation_function", "NONE")


def activation(w: Walk, conv: Operator, layer: str) -> Tuple[int, str]:
    """(the activation's output tensor, its name) after `conv` labelled `layer`; the conv's
    own output and 'linear' when no activation follows.  The activation ops are claimed."""
    out = conv.outputs[0]
    fused = fused_activation(conv)
    if fused in FUSED:
        return out, FUSED[fused]
    if fused != "NONE":
        raise GraphMismatch(f"{layer}: fused activation {fused} is not a MoViNet activation")
    uses = w.uses(out)
    if len(uses) == 1 and uses[0].name == "HARD_SWISH":
        w.claim(uses[0], act_label(layer))
        return uses[0].outputs[0], "hard_swish"
    logistic = [op for op in uses if op.name == "LOGISTIC"]
    if len(logistic) == 1 and len(uses) == 2:
        mul = [op for op in uses if op.name == "MUL"]
        if mul and {w.origin(t) for t in mul[0].inputs} == {out, logistic[0].outputs[0]}:
            w.claim(logistic[0], act_label(layer))
            w.claim(mul[0], act_label(layer))
            return mul[0].outputs[0], "swish"
    return out, "linear"


def peek_activation_output(w: Walk, conv: Operator) -> int:
    """Where the activation after `conv` ends (fused or hard swish), without claiming it:
    for looking ahead at what the next ops are."""
    out = conv.outputs[0]
    uses = w.uses(out)
    if fused_activation(conv) == "NONE" and len(uses) == 1 and uses[0].name == "HARD_SWISH":
        return uses[0].outputs[0]
    return out


def check_act(w: Walk, act: str, where: str) -> None:
    """Record the activation after the conv `where` (all must agree, `infer_config` checks);
    a block conv without one is not MoViNet."""
    w.acts[where] = act
    if act not in CONV_ACTIVATIONS:
        raise GraphMismatch(f"{where}: no activation after the conv (expected relu6 or "
                            f"hard_swish)")
