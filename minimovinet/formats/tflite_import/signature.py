"""The signature (image, logits, states) and where the walk expects each state.

A stream model carries its states through the signature: every state is an input and an
output of the same name (`structure.STATE_NAME`).  The matchers ask for the state that belongs
at their place (`state_source`, `block_state_source`) and for the op that computes its next
value (`state_sink`); a state read twice, by the wrong block or not at all is refused.
"""
from __future__ import annotations

from collections import OrderedDict

from ...structure import HEAD_PREFIX, STATE_NAME
from .labels import block_state, display
from .walk import GraphMismatch, Walk

IMAGE = "image"
LOGITS = "logits"


def _signature(w: Walk):
    sigs = w.model.signature_defs
    if not sigs:
        raise GraphMismatch("it has no signature: the state inputs and outputs cannot be named")
    sig = sigs.get("serving_default") or (next(iter(sigs.values())) if len(sigs) == 1 else None)
    if sig is None:
        raise GraphMismatch(f"it has signatures {list(sigs)} and none is 'serving_default'")
    if IMAGE not in sig.inputs:
        raise GraphMismatch(f"its signature has no 'image' input (inputs: "
                            f"{sorted(sig.inputs)[:5]})")
    if LOGITS not in sig.outputs:
        raise GraphMismatch(f"its signature has no 'logits' output (outputs: "
                            f"{sorted(sig.outputs)[:5]})")
    return sig


def read_signature(w: Walk) -> None:
    """Sets w.image, w.logits and the state inputs and outputs (in the signature's order)."""
    sig = _signature(w)
    w.image = sig.inputs[IMAGE]
    w.logits = sig.outputs[LOGITS]
    w.state_in = OrderedDict()
    w.state_out = {}
    for name, t in sig.inputs.items():
        if name == IMAGE:
            continue
        if not STATE_NAME.match(name):
            raise GraphMismatch(f"input {name!r} is neither 'image' nor a MoViNet state")
        w.state_in[name] = t
    for name, t in sig.outputs.items():
        if name == LOGITS:
            continue
        if name not in w.state_in:
            raise GraphMismatch(f"output {name!r} is not one of the state inputs")
        w.state_out[name] = t
    missing = [n for n in w.state_in if n not in w.state_out]
    if missing:
        raise GraphMismatch(f"state inputs {missing[:3]} have no matching output")
    w.state_by_tensor = {t: n for n, t in w.state_in.items()}
    w.used_states = {}
    w.block_states = {}


def _state_input(w: Walk, t: int, layer: str, shown: str) -> str:
    """The name of the state input `t` is (possibly through QUANTIZE)."""
    t = w.origin(t)
    q = w.producer_op(t)
    if q is not None and q.name == "QUANTIZE":
        w.claim(q, layer)
        t = w.origin(q.inputs[0])
    name = w.state_by_tensor.get(t)
    if name is None:
        raise GraphMismatch(f"{display(layer)}: expected the state input {shown!r}, found "
                            f"tensor {w.tensors[t].name!r}")
    return name


def _mark_used(w: Walk, name: str, layer: str) -> str:
    if name in w.used_states:
        raise GraphMismatch(f"state {name!r} is read by {display(w.used_states[name])} "
                            f"and {display(layer)}")
    w.used_states[name] = layer
    return name


def state_source(w: Walk, t: int, expected: str, layer: str) -> str:
    """`t` must be the state input named `expected` (possibly through QUANTIZE)."""
    name = _state_input(w, t, layer, expected)
    if name != expected:
        raise GraphMismatch(f"{display(layer)}: reads state {name!r} where "
                            f"{expected!r} belongs")
    return _mark_used(w, name, layer)


def block_state_source(w: Walk, t: int, index: int, kind: str, layer: str) -> str:
    """`t` must be a state input of kind `kind` of block `index`, whose (group, layer) is not
    known yet: the name's (group, layer) is recorded for the block (every state the block
    reads must agree; `architecture.name_blocks` checks it once the architecture is known).
    Returns the state's name."""
    name = _state_input(w, t, layer, display(block_state(index, kind)))
    m = STATE_NAME.match(name)
    if m is None or m.group(1) == HEAD_PREFIX or m.group(4) != kind:
        raise GraphMismatch(f"{display(layer)}: reads state {name!r} where a "
                            f"'state_block<g>_layer<l>_{kind}' belongs")
    position = (int(m.group(2)), int(m.group(3)))
    known = w.block_states.setdefault(index, position)
    if known != position:
        raise GraphMismatch(f"{display(layer)}: reads state {name!r} but the block "
                            f"also reads states of block{known[0]}_layer{known[1]}")
    return _mark_used(w, name, layer)


def state_sink(w: Walk, t: int, name: str, layer: str) -> None:
    """`t` (or its DEQUANTIZE) must be the signature's output of state `name`."""
    out = w.state_out.get(name)
    if out is None:
        raise GraphMismatch(f"{display(layer)}: the signature has no state {name!r}")
    candidates = {t, w.origin(t)}
    for op in w.uses(t):
        if op.name == "DEQUANTIZE" and op.outputs[0] == out:
            w.claim(op, layer)
            return
    if out in candidates or w.origin(out, layer) == w.origin(t):
        return
    raise GraphMismatch(f"{display(layer)}: the next value of {name!r} is not the "
                        f"signature's output of that name")


def check_unused_states(w: Walk) -> None:
    """A state no matcher asked for must pass straight through (input = output, unread)."""
    for name, t in w.state_in.items():
        if name in w.used_states:
            continue
        if w.state_out[name] != t:
            raise GraphMismatch(f"state {name!r} is not used by the graph but its output is "
                                f"computed")
        if w.consumers.get(t):
            raise GraphMismatch(f"state {name!r} is read outside the MoViNet structure")
