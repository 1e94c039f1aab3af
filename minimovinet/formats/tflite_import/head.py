"""The head and the classifier, from the last block's output to the signature's logits:

    project 1x1 conv (+ act) -> SUM (then MUL 1/(H*W)) or MEAN over space
      -> ADD(head pool_buffer state) -> running mean (frame_count.py)
      -> classifier hidden 1x1 conv (+ act) -> logits 1x1 conv -> [DEQUANTIZE]
"""
from __future__ import annotations

from typing import Tuple

from ...structure import HEAD_PREFIX, state_name
from ..tflite import Operator
from .activations import activation, check_act, fused_activation
from .convs import out_channels, pointwise
from .frame_count import match_divide_by_count, running_sum
from .labels import (CLASSIFIER_HIDDEN_CONV, CLASSIFIER_LOGITS_CONV, HEAD_POOL,
                     HEAD_PROJECT_CONV, OUTPUT_DEQUANTIZE, OUTPUT_VIEW)
from .signature import state_sink, state_source
from .walk import GraphMismatch, Walk

HEAD_POOL_BUFFER = state_name(HEAD_PREFIX, "pool_buffer")
HEAD_POOL_FRAME_COUNT = state_name(HEAD_PREFIX, "pool_frame_count")


def match_head_pool(w: Walk, h: int) -> Tuple[Operator, int]:
    """The causal global average pool of the projected features `h` [B, 1, H, W, P]:
    (the SUM or MEAN, the running mean [B, 1, 1, 1, P])."""
    pool = w.one(w.uses(h), ("SUM", "MEAN"), "head pool")
    axes = sorted(int(a) % 5 for a in w.const(pool.inputs[1]).ravel())
    if axes not in ([1, 2, 3], [2, 3]) or not pool.options.keep_dims:
        raise GraphMismatch(f"head pool reduces axes {axes}")
    w.claim(pool, HEAD_POOL)
    t = pool.outputs[0]
    if pool.name == "SUM":                               # the mean as SUM * 1/(H*W)
        mul = w.one(w.uses(t), ("MUL",), "head pool mean")
        w.claim(mul, HEAD_POOL)
        t = mul.outputs[0]
    add, addend = running_sum(w, t, "head cumulative pool", HEAD_POOL)
    w.claim(add, HEAD_POOL)
    state_source(w, w.other_input(add, addend, "head cumulative pool"), HEAD_POOL_BUFFER,
                 HEAD_POOL)
    total = add.outputs[0]
    state_sink(w, total, HEAD_POOL_BUFFER, HEAD_POOL)
    return pool, match_divide_by_count(w, total, HEAD_POOL_FRAME_COUNT, HEAD_POOL)


def match_classifier(w: Walk, pooled: int, project: int) -> Operator:
    """hidden 1x1 conv (+ act) -> logits 1x1 conv (linear) on the pooled features
    (`project` channels).  Returns the hidden conv and sets the classifier's activation and
    the number of classes."""
    hidden = w.one(w.uses(pooled), ("CONV_2D",), "classifier hidden conv")
    pointwise(w, hidden, CLASSIFIER_HIDDEN_CONV, project)
    hh, w.classifier_act = activation(w, hidden, CLASSIFIER_HIDDEN_CONV)
    logits = w.one(w.uses(hh), ("CONV_2D",), "classifier logits conv")
    pointwise(w, logits, CLASSIFIER_LOGITS_CONV, out_channels(w, hidden))
    if fused_activation(logits) != "NONE":
        raise GraphMismatch("classifier logits conv has an activation")
    w.num_classes = out_channels(w, logits)
    match_logits_output(w, logits)
    return hidden


def match_logits_output(w: Walk, logits: Operator) -> None:
    """The logits conv's output must be the signature's logits: through a DEQUANTIZE (float
    output) or a RESHAPE view (int8 output)."""
    out = logits.outputs[0]
    for op in w.uses(out):
        if op.name == "DEQUANTIZE" and op.outputs[0] == w.logits:
            w.claim(op, OUTPUT_DEQUANTIZE)
            out = op.outputs[0]
    if out != w.logits and w.origin(w.logits, OUTPUT_VIEW) != w.origin(logits.outputs[0]):
        raise GraphMismatch("the signature's logits are not the classifier's output")


def match_head(w: Walk, x: int) -> None:
    """The head and classifier reading the last block's output `x`; sets w.head."""
    proj = w.one(w.uses(x), ("CONV_2D",), "head projection conv")
    pointwise(w, proj, HEAD_PROJECT_CONV)
    h, act = activation(w, proj, HEAD_PROJECT_CONV)
    check_act(w, act, "head/project")
    pool, pooled = match_head_pool(w, h)
    hidden = match_classifier(w, pooled, out_channels(w, proj))
    w.head = dict(project=out_channels(w, proj), hidden=out_channels(w, hidden),
                  pool=pool.name)
