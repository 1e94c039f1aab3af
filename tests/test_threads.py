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

from conftest import expected_skip

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
print(json.dumps({"same": same, "errors": errors, "sequential": sequential}))
"""


def run_script(kind, threads, path="", form=None):
    """The script's result after checking it: concurrent streams equal sequential ones."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    env.pop("NUMBA_THREADING_LAYER", None)          # the default layer: workqueue
    env.pop("MINIMOVINET_INT8_FORM", None)
    if form:
        env["MINIMOVINET_INT8_FORM"] = form
    proc = subprocess.run([sys.executable, "-c", SCRIPT, kind, str(threads), str(path)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, (f"exit status {proc.returncode} (134 = numba's workqueue "
                                  f"abort):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["errors"], result["errors"]
    assert all(result["same"]), f"streams differing from sequential runs: {result['same']}"
    return result


@pytest.mark.parametrize("threads", [1, 2])
def test_float_model_from_four_threads(threads):
    run_script("float", threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_int8_model_from_four_threads(shared_dir, threads):
    run_script("int8", threads, shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite")


@pytest.mark.parametrize("form", ["avx2", "vnni", "rows"])
def test_int8_two_threads_give_the_bits_of_one(shared_dir, form):
    """The official A0 int8 model with every conv on 2 threads (the 1x1-conv kernels split
    their requantization passes, the depthwise kernels their rows) gives the logits and states
    of 1 thread bit for bit, in each x86 1x1-conv form."""
    from minimovinet.int8 import avx2, vnni
    available = {"avx2": avx2.AVAILABLE, "vnni": vnni.AVAILABLE, "rows": True}
    if not available[form]:
        expected_skip(f"this CPU cannot run the {form} form")
    path = shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite"
    one = run_script("int8", 1, path, form)["sequential"]
    two = run_script("int8", 2, path, form)["sequential"]
    differing = [i for i in range(len(one)) if one[i] != two[i]]
    print(f"{form}: streams whose logits or states differ between 1 and 2 threads:", differing)
    assert not differing


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
