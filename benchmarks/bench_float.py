"""Per-frame latency of float32 MoViNet stream models: minimovinet vs TensorFlow vs LiteRT.

    python benchmarks/bench_float.py [--models a0,a1,a2] [--frames 60] [--warmup 10] [--threads 1,2]

For each model: the official stream model is built once with seeded random weights
(tests/oracle.py) and exported twice from the same weights: a minimovinet h5 file (through the
official checkpoint and the converter) and a float32 TFLite file (TFLiteConverter on the
model's streaming signature, batch 1, one frame).  Then every (engine, threads) pair runs in
its own subprocess on the same frames, one frame per call with states carried forward:
  minimovinet   mm.set_num_threads(n)
  tf            official Keras model in a tf.function, intra/inter-op threads = n
  litert        ai_edge_litert Interpreter(num_threads=n), default delegates (XNNPACK)
Reported: median and p90 ms per frame after warm-up, peak RSS of the process, and the ratio
minimovinet / engine measured in this run.  Needs the test extra (TensorFlow, LiteRT).
Exported files are cached in benchmarks/.cache/.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
SIZES = {"a0": 172, "a1": 172, "a2": 224, "a3": 256, "a4": 290, "a5": 320}
SEED = 1


def _config(model_id):
    sys.path.insert(0, str(ROOT))
    import minimovinet as mm
    return mm.ModelConfig.from_variant(model_id, "stream", num_classes=600)


def prepare(model_id: str) -> dict:
    """Export h5 + TFLite + checkpoint for `model_id` from one random-weight official model."""
    size = SIZES[model_id]
    out = CACHE / f"{model_id}_stream"
    files = {"h5": out / "model.h5", "tflite": out / "model_float32.tflite",
             "ckpt": out / "ckpt" / "ckpt-1"}
    if files["h5"].exists() and files["tflite"].exists():
        return {k: str(v) for k, v in files.items()}
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "tests"))
    import oracle
    import tensorflow as tf
    from minimovinet.formats.official_checkpoint import convert_arrays
    cfg = _config(model_id)
    model = oracle.build_official(cfg, seed=SEED)
    prefix, arrays = oracle.checkpoint_arrays(model, out / "ckpt")
    convert_arrays(arrays, files["h5"], model_id=model_id, variant="stream")
    serve, _ = oracle.stream_serving_fn(model, cfg, size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model)
    tmp = files["tflite"].with_suffix(".part")
    tmp.write_bytes(converter.convert())
    tmp.replace(files["tflite"])
    return {k: str(v) for k, v in files.items()}


def frames_for(size, n):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 1, size, size, 3), dtype=np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- workers (one engine, one thread count, one process) ------------------------------------

def run_minimovinet(files, model_id, threads, frames):
    sys.path.insert(0, str(ROOT))
    import minimovinet as mm
    mm.set_num_threads(threads)
    model = mm.load(files["h5"])
    size = frames.shape[-2]
    states = model.init_states(1, size, size)
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        logits, states = model(frame, states)
        times.append(time.perf_counter() - t0)
    return times, logits


def run_tf(files, model_id, threads, frames):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    sys.path.insert(0, str(ROOT / "tests"))
    import oracle
    cfg = _config(model_id)
    model = oracle.build_raw(cfg)
    tf.train.Checkpoint(model=model).read(files["ckpt"]).expect_partial()
    size = frames.shape[-2]
    states = {k: tf.constant(v) for k, v in oracle.init_states(model, cfg, 1, size, size).items()}
    specs = {name: tf.TensorSpec(v.shape, v.dtype, name=name) for name, v in states.items()}
    specs["image"] = tf.TensorSpec([1, 1, size, size, 3], tf.float32)

    @tf.function(input_signature=[specs])
    def step(inputs):
        return model(inputs, training=False)

    times = []
    for frame in frames:
        t0 = time.perf_counter()
        logits, states = step({**states, "image": tf.constant(frame)})
        logits = logits.numpy()
        times.append(time.perf_counter() - t0)
    return times, logits


def run_litert(files, model_id, threads, frames):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=files["tflite"], num_threads=threads)
    runner = interpreter.get_signature_runner()
    inputs = runner.get_input_details()
    states = {name: np.zeros(d["shape"], d["dtype"]) for name, d in inputs.items()
              if name != "image"}
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        out = runner(image=frame, **states)
        states = {name: out[name] for name in states}
        times.append(time.perf_counter() - t0)
    return times, out["logits"]


ENGINES = {"minimovinet": run_minimovinet, "tf": run_tf, "litert": run_litert}


def worker(args):
    files = json.loads(args.files)
    size = SIZES[args.models]
    frames = frames_for(size, args.warmup + args.frames)
    times, logits = ENGINES[args.engine](files, args.models, args.threads, frames)
    timed = np.array(times[args.warmup:]) * 1000
    print(json.dumps({"median_ms": float(np.median(timed)),
                      "p90_ms": float(np.percentile(timed, 90)),
                      "first_ms": float(times[0] * 1000),
                      "peak_rss_mb": peak_rss_mb(),
                      "logits_head": np.asarray(logits).reshape(-1)[:3].tolist()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="a0,a1,a2")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--engines", default="minimovinet,litert,tf")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)

    rows = []
    for model_id in args.models.split(","):
        files = prepare(model_id)
        for threads in [int(t) for t in args.threads.split(",")]:
            results = {}
            for engine in args.engines.split(","):
                cmd = [sys.executable, __file__, "--worker", "--engine", engine,
                       "--models", model_id, "--threads", str(threads),
                       "--frames", str(args.frames), "--warmup", str(args.warmup),
                       "--files", json.dumps(files)]
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{engine} worker failed for {model_id}")
                results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((model_id, threads, results))
            _print_rows(rows[-1:], header=len(rows) == 1)
    print()
    print("ratio = minimovinet median / engine median, measured in this run "
          "(same weights, same frames, batch 1, one frame per call)")


def _print_rows(rows, header):
    if header:
        print(f"{'model':<6}{'res':>5}{'thr':>4}  {'engine':<12}{'median ms':>10}{'p90 ms':>8}"
              f"{'first ms':>10}{'peak MB':>9}{'mm/engine':>10}")
    for model_id, threads, results in rows:
        mine = results.get("minimovinet", {}).get("median_ms")
        for engine, r in results.items():
            ratio = "" if engine == "minimovinet" or mine is None else f"{mine / r['median_ms']:.2f}x"
            print(f"{model_id:<6}{SIZES[model_id]:>5}{threads:>4}  {engine:<12}"
                  f"{r['median_ms']:>10.2f}{r['p90_ms']:>8.2f}{r['first_ms']:>10.0f}"
                  f"{r['peak_rss_mb']:>9.0f}{ratio:>10}", flush=True)


if __name__ == "__main__":
    main()
