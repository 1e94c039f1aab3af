"""The walk over the whole graph, from the `image` input to the logits:

    [QUANTIZE] -> stem conv (+ act) -> blocks -> head project conv (+ act) -> head pool
               -> classifier hidden conv (+ act) -> classifier logits conv -> [DEQUANTIZE]

Every operator must find its place in this structure (`check_all_claimed`).  A float graph
(`Walk.float_graph`) has no QUANTIZE / DEQUANTIZE at its edges and float convs.
"""
from __future__ import annotations

from .activations import activation
from .block import match_block, next_is_block
from .build import SUPPORTED_OPS
from .convs import check_conv_quant
from .head import match_head
from .labels import INPUT_QUANTIZE, STEM_CONV
from .signature import check_unused_states, read_signature
from .walk import GraphMismatch, Walk


def check_operators(w: Walk) -> None:
    """Only MoViNet ops, and int8 conv weights (a float or dynamic-range model is refused
    up front, with what to do instead)."""
    foreign = [name for name in w.model.op_counts() if name not in SUPPORTED_OPS]
    if foreign:
        raise GraphMismatch(f"it uses operators {foreign} (a MoViNet stream graph uses only "
                            f"{', '.join(SUPPORTED_OPS)})")
    if w.float_graph:                         # float_graph.check_float_conv checks each conv
        return
    weights = {w.type_of(op.inputs[1]) for op in w.ops
               if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1}
    if weights and weights != {"INT8"}:
        raise GraphMismatch(f"its convolutions have {'/'.join(sorted(weights))} weights: a "
                            f"float (or float16 / dynamic-range) TFLite model, expected int8 "
                            f"weights (a full-integer conversion: TFLITE_BUILTINS_INT8 with a "
                            f"representative dataset); `minimovinet.load` reads it as a float "
                            f"model")


def match_input(w: Walk) -> int:
    """The int8 image: the `image` input itself or its QUANTIZE (a float graph: the float
    image).  Sets w.height, w.width."""
    x = w.image
    if w.float_graph:
        if w.type_of(x) != "FLOAT32":
            raise GraphMismatch(f"image input has type {w.type_of(x)} in a float graph")
    elif w.type_of(x) == "FLOAT32":
        q = w.one(w.uses(x), ("QUANTIZE",), "image input")
        w.claim(q, INPUT_QUANTIZE)
        x = q.outputs[0]
    elif w.type_of(x) != "INT8":
        raise GraphMismatch(f"image input has type {w.type_of(x)}")
    shape = w.shape(w.image)                             # [1, 1, H, W, 3]
    if len(shape) != 5 or shape[0] != 1 or shape[1] != 1 or shape[4] != 3:
        raise GraphMismatch(f"image input has shape {list(shape)}, expected [1, 1, H, W, 3] "
                            f"(a stream model fed one frame per call)")
    w.height, w.width = shape[2], shape[3]
    return x


def match_stem(w: Walk, x: int) -> int:
    """The stem conv on the 3 image channels (+ act).  Sets w.stem, w.stem_act."""
    stem = w.one(w.uses(x), ("CONV_2D",), "stem")
    kernel = w.shape(stem.inputs[1])                     # [C0, kh, kw, 3]
    if len(kernel) != 4 or kernel[3] != 3:
        raise GraphMismatch(f"stem: expected a conv on the 3 image channels, found kernel "
                            f"{list(kernel)}")
    check_conv_quant(w, stem, STEM_CONV)
    w.claim(stem, STEM_CONV)
    w.stem = dict(filters=kernel[0], kernel=(1, kernel[1], kernel[2]),
                  stride=(1, stem.options.stride_h, stem.options.stride_w))
    x, w.stem_act = activation(w, stem, STEM_CONV)
    return x


def match_blocks(w: Walk, x: int) -> int:
    """The blocks, one after the other, until the head; returns the last block's output."""
    while next_is_block(w, x) == "block":
        cin = w.shape(w.origin(x))[-1]
        x, spec = match_block(w, x, len(w.blocks), cin)
        w.blocks.append(spec)
    return x


def check_all_claimed(w: Walk) -> None:
    left = [op for op in w.ops if op.index not in w.layer_of]
    if left:
        desc = ", ".join(f"#{op.index} {op.name}" for op in left[:5])
        raise GraphMismatch(f"{len(left)} operator(s) are not part of the MoViNet structure: "
                            f"{desc}{' ...' if len(left) > 5 else ''}")
    check_unused_states(w)


def walk_graph(w: Walk) -> None:
    """Match the whole graph; what was found is in `w`."""
    check_operators(w)
    read_signature(w)
    x = match_input(w)
    x = match_stem(w, x)
    x = match_blocks(w, x)
    match_head(w, x)
    check_all_claimed(w)
