"""Per-frame latency of int8 MoViNet stream models: minimovinet vs LiteRT, on the same file.

    python benchmarks/bench_int8.py [--frames 100] [--warmup 10] [--threads 1,2]
                                    [--model ../shared/models/movinet_a0_stream_k600_int8.tflite]
    python benchmarks/bench_int8.py --model a2        # an int8 A2 file made by minimovinet
    python benchmarks/bench_int8.py --breakdown [--forms vnni,rows] [--frames 100]
    python benchmarks/bench_int8.py --before /tmp/main-copy --engines minimovinet,before,...

--model is the official A0 int8 file by default.  A model id (a0 ... a5) instead: the official
float stream model of that id with seeded random weights (benchmarks/bench_float.py's h5 file,
built once with TensorFlow), quantized by `minimovinet.quantize` (calibrated on 8 frames of each
shared clip at 5 fps, resized to the model's size; `--pools int8` quantizes the SE and head
pools as the TFLite converter does, else they stay float32 as minimovinet's default) and
written as a .tflite file, so that minimovinet and LiteRT run the same int8 file (cached in
benchmarks/.cache/); `--quantizer tf`: the same float model quantized by TF's TFLite converter
instead (the file LiteRT's delegate is made for).  (The peak RSS of the run that builds the file includes TensorFlow's:
Linux keeps a process's peak across exec.)

Every (engine, threads) pair runs in its own subprocess on the same frames (the first
frames of ../shared/media/carving_ice_172.mp4 when PyAV is installed, resized to the model's
size, else seeded random frames), one frame per call, states carried forward:

  minimovinet      minimovinet.load(model.tflite), mm.set_num_threads(n)  (bit-exact with the next)
  minimovinet-F    the same with the 1x1-conv form F forced (vnni | rows | reduce; see
                   minimovinet/int8/ops/conv.py), e.g. --engines minimovinet,minimovinet-rows
  litert-builtin   LiteRT, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, num_threads=n
  litert-xnnpack   LiteRT default (XNNPACK delegate), num_threads=n
  before, before-F the minimovinet checkout given by --before (e.g. `git archive main`
                   unpacked in /tmp), for before / after tables in one run

Reported: median, fastest and p90 ms per frame after warm-up, the first call, the peak RSS,
the ratio minimovinet / engine and engine / litert-xnnpack in this run, and the bytes of state carried between frames.
Every engine runs --repeat times (alternating) and keeps its best median: machines shared with
other jobs are noisy; compare ratios within one run.

--breakdown: minimovinet alone at 1 thread, per 1x1-conv form (each in its own subprocess;
before-F for the --before checkout):
the time of every compiled op per frame (median over the frames), summed by op class, and
how much of a frame is Python: the per-call cost of a runner closure calling a compiled
kernel (measured on an empty kernel with the same argument count) times the calls per frame,
plus the time outside the ops (states in and out).
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
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = SHARED / "models" / "movinet_a0_stream_k600_int8.tflite"


MODEL_IDS = ("a0", "a1", "a2", "a3", "a4", "a5")


def int8_model_file(model_id: str, pools: str) -> Path:
    """An int8 .tflite of the official float `model_id` stream model (seeded random weights),
    quantized by minimovinet with `pools` ('float': minimovinet's default, 'int8': the TFLite
    converter's scheme); built once (TensorFlow for the float model), then cached."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_float
    suffix = "" if pools == "float" else f"_{pools}_pools"
    path = bench_float.CACHE / f"{model_id}_stream" / f"model_int8_minimovinet{suffix}.tflite"
    if path.exists():
        return path
    import minimovinet as mm
    files = bench_float.prepare(model_id)
    size = bench_float.SIZES[model_id]
    clips = sorted((SHARED / "media").glob("*.mp4"))
    calibration = np.stack([_clip(c, size, 8, fps=5) for c in clips])  # [clips, 8, s, s, 3]
    int8_model = mm.quantize(files["h5"], calibration, pools=pools)
    mm.save(int8_model, path)
    return path


def converter_int8_file(model_id: str) -> Path:
    """The same official float model (bench_float's seed) quantized by TF's TFLite converter
    (full int8 inside, float image and states; calibrated on the frames `int8_model_file`
    uses, streamed from zero states), for LiteRT's speed on a file it was made for."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_float
    path = bench_float.CACHE / f"{model_id}_stream" / "model_int8_tfconverter.tflite"
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT / "tests"))
    import oracle
    import tensorflow as tf
    size = bench_float.SIZES[model_id]
    cfg = bench_float._config(model_id)
    model = oracle.build_official(cfg, seed=bench_float.SEED)
    serve, zero_states = oracle.stream_serving_fn(model, cfg, size)
    clips = [_clip(c, size, 8, fps=5) for c in sorted((SHARED / "media").glob("*.mp4"))]

    def representative():
        for clip in clips:
            states = dict(zero_states)
            for frame in clip:
                inputs = {"image": frame[None, None], **states}
                yield inputs
                out = serve({k: tf.constant(v) for k, v in inputs.items()})
                states = {k: np.asarray(out[k]) for k in states}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tmp = path.with_suffix(".part")
    tmp.write_bytes(converter.convert())
    tmp.replace(path)
    return path


def _model_size(path) -> int:
    import minimovinet as mm
    return int(mm.load(path).height)


def _clip(path, size: int, n: int, fps=None) -> np.ndarray:
    """n frames of a clip (looped if shorter), float32 [n, size, size, 3] in [0, 1]."""
    import minimovinet as mm
    frames = list(mm.read_video(path, fps=fps, size=(size, size), max_frames=n))
    while len(frames) < n:
        frames += frames[: n - len(frames)]
    return np.stack(frames).astype(np.float32) / 255


def load_frames(n: int, size: int = 172) -> np.ndarray:
    clip = SHARED / "media" / "carving_ice_172.mp4"
    try:
        return _clip(clip, size, n)[:, None, None]     # [n, 1, 1, size, size, 3]
    except Exception:                              # no PyAV / no clip: seeded random frames
        rng = np.random.default_rng(0)
        return rng.random((n, 1, 1, size, size, 3), dtype=np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_minimovinet(model_path, threads, frames):
    import minimovinet as mm
    mm.set_num_threads(threads)
    model = mm.load(model_path)
    states = model.init_states()
    state_bytes = sum(v.nbytes for v in states.values())
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        logits, states = model(frame, states)
        times.append(time.perf_counter() - t0)
    return times, logits, state_bytes


def _run_litert(model_path, threads, frames, builtin):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kwargs = dict(model_path=str(model_path), num_threads=threads)
    if builtin:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = Interpreter(**kwargs).get_signature_runner()
    states = {name: np.zeros(d["shape"], d["dtype"])
              for name, d in runner.get_input_details().items() if name != "image"}
    state_bytes = sum(v.nbytes for v in states.values())
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        out = runner(image=frame, **states)
        states = {name: out[name] for name in states}
        times.append(time.perf_counter() - t0)
    return times, out["logits"], state_bytes


def op_class(op, T) -> str:
    """A row of the breakdown: the op kind, convs split by what they are."""
    if op.kind == "conv":
        w = T[op.inputs[1]].shape                       # [Cout, kh, kw, Cin]
        if w[1] * w[2] > 1:
            return "conv (stem, dense)"
        return "conv 1x1 (1 pixel)" if np.prod(T[op.outputs[0]].shape[1:3]) == 1 \
            else "conv 1x1"
    if op.kind == "depthwise":
        return "depthwise (temporal)" if T[op.inputs[1]].shape[2] == 1 \
            else "depthwise (spatial)"
    return op.kind


def _empty_call_us(calls: int = 20000) -> float:
    """Microseconds of one runner-closure call of a compiled kernel that does nothing, with a
    1x1 conv's arguments (9 arrays, two of them reshaped in the closure, 4 ints): the Python
    and Numba dispatch every op pays."""
    from numba import njit
    kernel = njit(lambda x, w, b, m, l, o, t, zo, lo, hi, out, a, c: None)
    ws = [np.zeros((4, 8), np.int8), np.zeros(8, np.int32), np.zeros(8, np.int64),
          np.zeros((4, 8), np.int8)]
    x, b, o, out = 0, 1, 2, 3
    zo, lo, hi, P = -3, -128, 127, 4

    def run(ws, ki):
        kernel(ws[x].reshape(P, 8), ws[x], ws[b], ws[b], ws[b], ws[o], ws[o], zo, lo, hi,
               ws[out].reshape(P, 8), ws[x], P)
    run(ws, None)
    t0 = time.perf_counter()
    for _ in range(calls):
        run(ws, None)
    return (time.perf_counter() - t0) / calls * 1e6


def breakdown_worker(args):
    """Per-op times of one form (`--breakdown`), printed as JSON."""
    form = args.engine.split("-", 1)[1] if args.engine.startswith("before-") else args.engine
    sys.path.insert(0, args.tree)
    if form != "default":
        os.environ["MINIMOVINET_INT8_FORM"] = form
    import minimovinet as mm
    from minimovinet.int8 import runner as R
    mm.set_num_threads(1)
    model = mm.load(args.model)
    prog, runner = model.program, model.runner
    frames = load_frames(args.warmup + args.frames, args.size)
    plan_ops = getattr(runner, "plan_ops", None)      # the ops a step runs (older: all)
    if plan_ops is None:
        plan_ops = [i for i, run in enumerate(runner.runners) if run is not R._noop]
    per_op = {i: [] for i in plan_ops}

    def timed(i, run):
        def timed_run(ws, ki):
            t0 = time.perf_counter()
            run(ws, ki)
            per_op[i].append(time.perf_counter() - t0)
        return timed_run
    if hasattr(runner, "plan"):
        runner.plan = [(timed(i, run), par) for i, (run, par) in zip(plan_ops, runner.plan)]
    else:
        runner.runners = [timed(i, run) if i in per_op else run
                          for i, run in enumerate(runner.runners)]
    states = model.init_states()
    frame_times = []
    for frame in frames:
        t0 = time.perf_counter()
        _, states = model(frame, states)
        frame_times.append(time.perf_counter() - t0)
    w = args.warmup
    op_ms = {i: float(np.median(t[w:])) * 1000 for i, t in per_op.items()}
    rows = {}
    calls = len(op_ms)
    for i, ms in op_ms.items():
        key = op_class(prog.ops[i], prog.tensors)
        n, total = rows.get(key, (0, 0.0))
        rows[key] = (n + 1, total + ms)
    frame_ms = float(np.median(frame_times[w:])) * 1000
    print(json.dumps({"frame_ms": frame_ms, "ops_ms": sum(op_ms.values()), "calls": calls,
                      "call_us": _empty_call_us(), "rows": rows}))


def breakdown(args):
    results = {}
    for _ in range(args.repeat):                        # alternating; each form's best frame
        for form in args.forms.split(","):
            cmd = [sys.executable, __file__, "--breakdown-worker", "--engine", form, "--model",
                   args.model, "--frames", str(args.frames), "--warmup", str(args.warmup),
                   "--tree", _tree(args, form), "--size", str(args.size)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"breakdown of form {form} failed")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            if form not in results or r["frame_ms"] < results[form]["frame_ms"]:
                results[form] = r
    forms = list(results)
    keys = sorted({k for r in results.values() for k in r["rows"]},
                  key=lambda k: -max(r["rows"].get(k, (0, 0))[1] for r in results.values()))
    print(f"per-op time, 1 thread, median of {args.frames} frames (ms per frame; ops timed "
          f"one by one, so each includes its Python call)")
    print(f"{'op class':<24}{'ops':>5}" + "".join(f"{f:>12}" for f in forms))
    for k in keys:
        n = max(r["rows"].get(k, (0, 0))[0] for r in results.values())
        print(f"{k:<24}{n:>5}" + "".join(f"{r['rows'].get(k, (0, 0.0))[1]:>12.3f}"
                                         for r in results.values()))
    print(f"{'sum of the ops':<29}" + "".join(f"{r['ops_ms']:>12.3f}" for r in results.values()))
    print(f"{'outside the ops':<29}" + "".join(f"{r['frame_ms'] - r['ops_ms']:>12.3f}"
                                               for r in results.values()))
    print(f"{'frame (timed ops)':<29}" + "".join(f"{r['frame_ms']:>12.3f}"
                                                 for r in results.values()))
    print(f"{'Python calls per frame':<29}" + "".join(f"{r['calls']:>12}"
                                                      for r in results.values()))
    print(f"{'  x empty call (us)':<29}" + "".join(f"{r['call_us']:>12.2f}"
                                                   for r in results.values()))
    print(f"{'  = dispatch (ms)':<29}" + "".join(f"{r['calls'] * r['call_us'] / 1000:>12.3f}"
                                                 for r in results.values()))


ENGINES = {
    "minimovinet": run_minimovinet,
    "litert-builtin": lambda m, t, f: _run_litert(m, t, f, builtin=True),
    "litert-xnnpack": lambda m, t, f: _run_litert(m, t, f, builtin=False),
}


def _tree(args, engine: str) -> str:
    """The minimovinet checkout an engine runs."""
    if engine.startswith("before"):
        if not args.before:
            raise SystemExit(f"engine {engine}: give the other checkout with --before PATH")
        return str(Path(args.before).resolve())
    return str(ROOT)


def worker(args):
    frames = load_frames(args.warmup + args.frames, args.size)
    engine = args.engine
    sys.path.insert(0, args.tree)
    if engine.startswith(("minimovinet-", "before-")):   # a forced 1x1-conv form
        os.environ["MINIMOVINET_INT8_FORM"] = engine.split("-", 1)[1]
    if engine.startswith(("minimovinet", "before")):
        engine = "minimovinet"
    times, logits, state_bytes = ENGINES[engine](args.model, args.threads, frames)
    timed = np.array(times[args.warmup:]) * 1000
    print(json.dumps({"median_ms": float(np.median(timed)),
                      "p90_ms": float(np.percentile(timed, 90)), "min_ms": float(timed.min()),
                      "first_ms": float(times[0] * 1000), "peak_rss_mb": peak_rss_mb(),
                      "state_bytes": int(state_bytes),
                      "logits_head": np.asarray(logits).reshape(-1)[:3].tolist()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--pools", choices=("float", "int8"), default="float",
                        help="with a model id: quantize the cumulative pools as minimovinet "
                             "does by default (float) or as the TFLite converter does (int8)")
    parser.add_argument("--quantizer", choices=("minimovinet", "tf"), default="minimovinet",
                        help="with a model id: the int8 file made by minimovinet.quantize or by "
                             "TF's TFLite converter (needs TensorFlow)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--engines", default="minimovinet,litert-builtin,litert-xnnpack")
    parser.add_argument("--repeat", type=int, default=3,
                        help="run every engine this many times, alternating, and keep each "
                             "engine's best median (a shared machine's load comes and goes)")
    parser.add_argument("--breakdown", action="store_true",
                        help="per-op time breakdown of minimovinet at 1 thread, per form")
    parser.add_argument("--forms", default="vnni,rows",
                        help="with --breakdown: the 1x1-conv forms (or 'default')")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--breakdown-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--before", help="another minimovinet checkout, for the engines "
                                         "'before' and 'before-F'")
    parser.add_argument("--tree", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=172, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    if args.breakdown_worker:
        return breakdown_worker(args)
    if args.model in MODEL_IDS:
        args.model = str(converter_int8_file(args.model) if args.quantizer == "tf" else
                         int8_model_file(args.model, args.pools))
    if not Path(args.model).exists():
        raise SystemExit(f"{args.model}: not found (the official model lives in ../shared)")
    args.size = _model_size(args.model)
    if args.breakdown:
        return breakdown(args)
    print(f"model {args.model}; {args.frames} timed frames after {args.warmup} warm-up, "
          f"one frame per call, states carried")
    print(f"{'thr':>3}  {'engine':<15}{'median ms':>10}{'min ms':>8}{'p90 ms':>8}{'first ms':>10}"
          f"{'peak MB':>9}{'state bytes':>13}{'mm/engine':>11}{'(min)':>7}{'/xnnpack':>10}")
    for threads in [int(t) for t in args.threads.split(",")]:
        results = {}
        for _ in range(args.repeat):
            for engine in args.engines.split(","):
                cmd = [sys.executable, __file__, "--worker", "--engine", engine, "--model",
                       args.model, "--threads", str(threads), "--frames", str(args.frames),
                       "--warmup", str(args.warmup), "--tree", _tree(args, engine),
                       "--size", str(args.size)]
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{engine} worker failed")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                if engine not in results or r["median_ms"] < results[engine]["median_ms"]:
                    results[engine] = r
        mine = results.get("minimovinet", {})
        xnn = results.get("litert-xnnpack", {})
        for engine, r in results.items():
            ratio = ratio_min = ""
            if engine != "minimovinet" and mine:
                ratio = f"{mine['median_ms'] / r['median_ms']:.2f}x"
                ratio_min = f"{mine['min_ms'] / r['min_ms']:.2f}x"
            vs_xnn = f"{r['median_ms'] / xnn['median_ms']:.2f}x" if xnn else ""
            print(f"{threads:>3}  {engine:<15}{r['median_ms']:>10.2f}{r['min_ms']:>8.2f}"
                  f"{r['p90_ms']:>8.2f}{r['first_ms']:>10.0f}{r['peak_rss_mb']:>9.0f}"
                  f"{r['state_bytes']:>13,}{ratio:>11}{ratio_min:>7}{vs_xnn:>10}", flush=True)
    print("\nmm/engine = minimovinet median / engine median in this run, (min) the same for the "
          "fastest frame; /xnnpack = engine median / litert-xnnpack median; minimovinet and "
          "litert-builtin compute the same bits.")


if __name__ == "__main__":
    main()
