"""One model called from several Python threads at once, each stream with its own states,
gives exactly what sequential calls give: float and int8 models, 1 and 2 kernel threads.

Numba's workqueue threading layer aborts the whole process when two threads enter parallel
regions at once; minimovinet runs at most one parallel region at a time and lets the other
threads use the serial builds (threads.guarded).  Each check runs in a subprocess so that an
abort is reported as a failure (exit status 134) instead of killing the test worker.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys, threading
import numpy as np
import minimovinet as mm
from minimovinet.float32 import kernels
from minimovinet.int8 import runner as int8_runner

kind, threads, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kernels.PARALLEL_MIN_WORK = 0            # every float kernel on the threads (when threads > 1)
int8_runner.PARALLEL_MIN_WORK = 0        # every int8 conv on the threads
mm.set_num_threads(threads)
if kind == "float":
    model = mm.random_model("a0", "stream", seed=1)
    size, streams, frames = 48, 4, 4
else:
    model = mm.load(path)
    size, streams, frames = model.height, 4, 3
rng = np.random.default_rng(0)
clips = [rng.random((1, frames, size, size, 3), dtype=np.float32) for _ in range(streams)]

def run(clip):
    states = model.init_states(1, size, size)
    out = []
    for t in range(clip.shape[1]):
        logits, states = model(clip[:, t:t + 1], states)
        out.append(np.asarray(logits, np.float64).tobytes().hex())
    return out, {k: np.asarray(v).tobytes().hex() for k, v in states.items()}

sequential = [run(c) for c in clips]
concurrent = [None] * streams
errors = []
def worker(i):
    try:
        for _ in range(2):                   # twice, to overlap more regions
            concurrent[i] = run(clips[i])
    except BaseException as e:               # reported, not swallowed
        errors.append(repr(e))
pool = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
for t in pool: t.start()
for t in pool: t.join()
same = [concurrent[i] == sequential[i] for i in range(streams)]
print(json.dumps({"same": same, "errors": errors}))
"""


def run_script(kind, threads, path=""):
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_THREADING_LAYER", None)          # the default layer: workqueue
    proc = subprocess.run([sys.executable, "-c", SCRIPT, kind, str(threads), str(path)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, (f"exit status {proc.returncode} (134 = numba's workqueue "
                                  f"abort):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["errors"], result["errors"]
    assert all(result["same"]), f"streams differing from sequential runs: {result['same']}"


@pytest.mark.parametrize("threads", [1, 2])
def test_float_model_from_four_threads(threads):
    run_script("float", threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_int8_model_from_four_threads(shared_dir, threads):
    run_script("int8", threads, shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite")


def test_guard_falls_back_to_the_serial_build():
    """While one thread is inside a parallel region, another call runs the serial build."""
    from minimovinet import threads
    from minimovinet.float32 import kernels
    calls = []
    run = threads.guarded(lambda: calls.append("parallel"), lambda: calls.append("serial"))
    run()
    with threads.PARALLEL_REGION:
        run()
    run()
    assert calls == ["parallel", "serial", "parallel"]
    assert not threads.PARALLEL_REGION.locked()
    np.testing.assert_equal(kernels.PARALLEL.pointwise.serial_build, kernels.SERIAL.pointwise)
