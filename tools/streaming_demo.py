"""Frame-by-frame streaming equals whole-clip inference (the README's example, runnable).

    python tools/streaming_demo.py
"""
import numpy as np
import minimovinet as mm

model = mm.random_model("a0", "stream", seed=0)
clip = np.random.default_rng(0).random((1, 8, 172, 172, 3), dtype=np.float32)

whole = model(clip)                                   # all 8 frames in one call

states = model.init_states(batch=1, height=172, width=172)
for t in range(8):                                    # one frame per call
    logits, states = model(clip[:, t:t + 1], states)

print("max |frame-by-frame - whole clip| =", np.abs(logits - whole).max())
print(states["state_block1_layer0_stream_buffer"].shape)   # (1, 2, 22, 22, 80): last 2 frames
print(states["state_head_pool_frame_count"])                # [8]
print(model.describe())                                     # every state and its bytes
