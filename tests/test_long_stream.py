"""20,000 frames through a small stream model: running pool sums and frame counts stay correct.

Every cumulative pool's input (the per-frame spatial means) is recorded and summed in float64;
the float32 `pool_buffer` states the model carries must stay within float32 rounding of those
sums, frame counts must be exact, and nothing may become non-finite.
"""
import numpy as np

from conftest import random_model
from minimovinet.float32 import layers

FRAMES = 20_000
CHUNK = 100


def test_20000_frames(monkeypatch):
    model = random_model("a0", "stream", num_classes=10, seed=5)
    sums64 = {}
    original = layers.CumulativePool.__call__

    def recording_call(self, frame_means, states, new_states):
        out = original(self, frame_means, states, new_states)
        if self.sum_name is not None:
            total = sums64.get(self.sum_name, 0.0) + frame_means.astype(np.float64).sum(axis=1)
            sums64[self.sum_name] = total                         # [B, C]
        return out

    monkeypatch.setattr(layers.CumulativePool, "__call__", recording_call)
    rng = np.random.default_rng(0)
    states = model.init_states(1, 16, 16)
    worst = 0.0
    for start in range(0, FRAMES, CHUNK):
        # slowly varying brightness so the features are not stationary noise
        clip = rng.random((1, CHUNK, 16, 16, 3), dtype=np.float32) * 0.5
        clip += np.float32(0.25 + 0.25 * np.sin(start / 3000.0))
        logits, states = model(clip, states)
        assert np.isfinite(logits).all()
        if (start // CHUNK) % 20 == 19 or start + CHUNK == FRAMES:
            for name, total in sums64.items():
                pool = states[name].reshape(total.shape).astype(np.float64)
                scale = np.abs(total).max()
                worst = max(worst, float(np.abs(pool - total).max() / scale))
    seen = FRAMES
    for name, value in states.items():
        if name.endswith("frame_count"):
            assert value.dtype == np.int32 and int(value[0]) == seen, name
    print(f"{len(sums64)} pools over {FRAMES} frames: worst relative error of the float32 "
          f"running sums vs float64: {worst:.2e}")
    assert worst < 1e-4
    # the pooled mean the head uses equals the float64 mean of all frames
    head = states["state_head_pool_buffer"].reshape(-1) / seen
    np.testing.assert_allclose(head, sums64["state_head_pool_buffer"].reshape(-1) / seen,
                               rtol=1e-4, atol=1e-6)
