"""Stream buffers without copies (minimovinet/int8/aliasing.py).

The values are checked against LiteRT elsewhere, with the placements on (the default): every
tensor after every step in tests/test_int8_litert.py, the logits and all 43 states of the
official model at every frame of the real clips in tests/test_int8_official.py.  Here:
`contiguous_run` against NumPy's own slicing, and what the placements remove from a step.
"""
import itertools

import numpy as np
import pytest

from minimovinet.int8 import aliasing
from minimovinet.int8 import runner as int8_runner

MODEL = "models/movinet_a0_stream_k600_int8.tflite"


def _cases():
    rng = np.random.default_rng(3)
    shapes = [(1, 3, 4, 5), (2, 3, 4), (1, 1, 6), (4,), (1, 5, 1, 3)]
    for shape in shapes:
        per_axis = [[(0, n, 1), (1, n, 1), (0, max(1, n - 1), 1), (0, n, 2), (n - 1, n, 1)]
                    for n in shape]
        combos = list(itertools.product(*per_axis))
        for k in rng.choice(len(combos), size=min(40, len(combos)), replace=False):
            yield shape, [list(s) for s in combos[k]]


@pytest.mark.parametrize("shape,slices", list(_cases()))
def test_contiguous_run_is_numpys_slice(shape, slices):
    x = np.arange(int(np.prod(shape))).reshape(shape)
    selected = x[tuple(slice(*s) for s in slices)]
    run = aliasing.contiguous_run(shape, slices)
    flat = selected.reshape(-1)
    # a single run exactly when the selected elements are consecutive in memory
    consecutive = flat.size > 0 and np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size))
    assert (run is not None) == consecutive, (shape, slices, run)
    if run is not None:
        np.testing.assert_array_equal(x.reshape(-1)[run[0]:run[1]], flat)


def _steps(model, frames, states):
    out = []
    for t in range(frames.shape[1]):
        logits, states = model(frames[:, t:t + 1], states)
        out.append((logits, {k: v.copy() for k, v in states.items()}))
    return out


def test_official_stream_buffers_are_not_copied(shared_dir, monkeypatch):
    """The official A0: its 11 CONCATENATION + SLICE pairs run no copy (the buffer parts are
    written in place by their producers), and the bits are those of the copying plan."""
    import minimovinet as mm
    path = shared_dir / MODEL
    model = mm.load(path)
    kinds = [model.program.ops[i].kind for i in model.runner.plan_ops]
    print("ops per step:", len(kinds), "placements:", len(model.runner.placements))
    assert "slice" not in kinds and "concat" not in kinds
    monkeypatch.setattr(int8_runner, "PLACE_STREAM_BUFFERS", False)
    copying = mm.load(path)
    copying_kinds = [copying.program.ops[i].kind for i in copying.runner.plan_ops]
    assert copying_kinds.count("concat") == 11 and copying_kinds.count("slice") == 11
    frames = np.random.default_rng(0).random((1, 6, 172, 172, 3), dtype=np.float32)
    a = _steps(model, frames, model.init_states())
    b = _steps(copying, frames, copying.init_states())
    for t, ((la, sa), (lb, sb)) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(la, lb, err_msg=f"frame {t}: logits")
        for name in sa:
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"frame {t}: {name}")
