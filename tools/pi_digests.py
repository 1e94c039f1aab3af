"""Run the int8 model frame by frame and print a digest of every step's outputs.

The same script runs on x86 and under emulated aarch64 (tools/run_under_aarch64.sh); the CI
step tools/run_pi_checks.sh compares the digests: the int8 arithmetic is integer (plus a few
float32 operations without fastmath), so logits and states must be bit-identical everywhere.

    # x86 (decodes the clip with PyAV and saves the frames for the emulated runs):
    python tools/pi_digests.py --clip ../shared/media/carving_ice_172.mp4 --max-frames 16 \
        --save-frames /tmp/w/frames.npy --json /tmp/w/x86.json
    # emulated Raspberry Pi 5 (needs only numpy + numba):
    tools/run_under_aarch64.sh --cpu cortex-a76 tools/pi_digests.py \
        --frames /tmp/w/frames.npy --json /tmp/w/cortex-a76.json
    # compare (exit 1 on any difference):
    python tools/pi_digests.py --compare /tmp/w/x86.json /tmp/w/cortex-a76.json

Per step t (one frame per call, states carried from `init_states()`), the digest is the sha256
of the logits' bytes and of every state (name, dtype, shape and bytes, in name order).  Also
reported: the phases' times (import, model load, first frame, later frames), the numba cache
hits and compilations of every kernel, and the peak RSS of the process (getrusage; under qemu
that is the emulator process: the guest's memory plus qemu's own, see the README).
"""
from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:            # this checkout's minimovinet, not an installed one
    sys.path.insert(0, str(PROJECT))
DEFAULT_MODEL = PROJECT.parent / "shared" / "models" / "movinet_a0_stream_k600_int8.tflite"
DEFAULT_LABELS = PROJECT.parent / "shared" / "labels" / "kinetics600_label_map.txt"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # KiB on Linux


def sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes() if hasattr(a, "tobytes") else str(a).encode())
    return h.hexdigest()


def states_digest(states) -> str:
    h = hashlib.sha256()
    for name in sorted(states):
        v = states[name]
        h.update(f"{name}|{v.dtype.str}|{v.shape}|".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def decode(clip, max_frames, size):
    from minimovinet.apps.video import read_video
    import numpy as np
    frames = list(read_video(clip, size=(size, size), max_frames=max_frames))
    if not frames:
        raise SystemExit(f"{clip}: no frames decoded")
    return np.stack(frames)


def kernel_cache_stats():
    """{kernel: {signatures, cache_hits, compiled, cache}} for every numba kernel of
    minimovinet (module globals and the SERIAL / PARALLEL namespaces) that ran in this
    process: `compiled` counts the signatures compiled here (not found in the on-disk cache),
    `cache_hits` those loaded from it."""
    import types
    from numba.core.dispatcher import Dispatcher
    out, seen = {}, set()
    for modname, mod in sorted(sys.modules.items()):
        if not modname.startswith("minimovinet") or mod is None:
            continue
        # SERIAL before PARALLEL: a serial-only kernel is in both namespaces
        for attr, value in sorted(vars(mod).items(), key=lambda kv: (kv[0] != "SERIAL", kv[0])):
            items = [(attr, value)]
            if isinstance(value, types.SimpleNamespace):
                items = [(f"{attr}.{k}", v) for k, v in sorted(vars(value).items())]
            for name, disp in items:
                if not isinstance(disp, Dispatcher) or id(disp) in seen or not disp.signatures:
                    continue
                seen.add(id(disp))
                out[f"{modname.split('.', 1)[-1]}.{name}"] = dict(
                    signatures=len(disp.signatures),
                    cache_hits=sum(disp.stats.cache_hits.values()),
                    compiled=sum(disp.stats.cache_misses.values()),
                    cache=type(disp._cache).__name__ != "NullCache")
    return out


def run(args):
    import numpy as np
    import numba
    import llvmlite
    from llvmlite import binding as ll
    t_imported0 = time.perf_counter()
    import minimovinet as mm
    from minimovinet.int8.ops import conv as int8_conv
    t_imported = time.perf_counter()
    rss_imported = peak_rss_mib()

    if args.frames:
        frames = np.load(args.frames)
    else:
        frames = decode(args.clip, args.max_frames, args.size)
    if args.max_frames:
        frames = frames[:args.max_frames]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise SystemExit(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if args.save_frames:
        tmp = Path(str(args.save_frames) + ".part.npy")
        np.save(tmp, frames)
        tmp.replace(args.save_frames)

    if args.threads:
        mm.set_num_threads(args.threads)
    model_path = Path(args.model)
    if not model_path.exists():
        raise SystemExit(f"{model_path}: the official int8 model is absent (../shared)")
    t0 = time.perf_counter()
    model = mm.load(model_path)
    if args.float:
        model = model.dequantize()                  # the same network in float32
    t_loaded = time.perf_counter()
    states = model.init_states(1, frames.shape[1], frames.shape[2])
    steps = []
    frame_times = []
    for t, frame in enumerate(frames):
        image = (frame.astype(np.float32) / np.float32(255))[None, None]
        f0 = time.perf_counter()
        logits, states = model(image, states)
        frame_times.append(time.perf_counter() - f0)
        steps.append(dict(step=t, logits=sha(logits), states=states_digest(states)))
    t_done = time.perf_counter()

    logits = np.asarray(logits, np.float64).reshape(-1)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top = int(np.argmax(probs))
    label = None
    if DEFAULT_LABELS.exists():
        names = [s.strip() for s in DEFAULT_LABELS.read_text().splitlines() if s.strip()]
        label = names[top] if top < len(names) else None
    cache = kernel_cache_stats()
    later = sorted(frame_times[1:])
    return dict(
        machine=platform.machine(),
        cpu=os.environ.get("PI_GUEST_CPU") or ll.get_host_cpu_name(),
        llvm_cpu=ll.get_host_cpu_name(),
        llvm_features=ll.get_host_cpu_features().flatten(),
        python=platform.python_version(),
        versions=dict(numpy=np.__version__, numba=numba.__version__,
                      llvmlite=llvmlite.__version__),
        numba_num_threads=numba.config.NUMBA_NUM_THREADS,
        threads=mm.get_num_threads(),
        threading_layer=numba.config.THREADING_LAYER,
        numba_cache_dir=numba.config.CACHE_DIR or "(next to the sources)",
        pointwise_form=int8_conv.POINTWISE_FORM,
        model=model_path.name + (" (dequantized float32 view)" if args.float else ""),
        frames=len(frames),
        frame_shape=list(frames.shape[1:]),
        frames_sha256=sha(frames),
        seconds=dict(import_numpy_numba=round(t_imported0 - T_START, 3),
                     import_minimovinet=round(t_imported - t_imported0, 3),
                     load_model=round(t_loaded - t0, 3),
                     first_frame=round(frame_times[0], 3),
                     later_frame_median=round(later[len(later) // 2], 4) if later else None,
                     frames_total=round(t_done - t_loaded, 3),
                     script_total=round(time.perf_counter() - T_START, 3),
                     start_to_first_logits=round(t_loaded - T_START + frame_times[0], 3)),
        peak_rss_mib=round(peak_rss_mib(), 1),
        peak_rss_after_import_mib=round(rss_imported, 1),
        top1=dict(index=top, label=label, prob=round(float(probs[top]), 4)),
        kernels_compiled=sum(v["compiled"] for v in cache.values()),
        kernels_loaded_from_cache=sum(v["cache_hits"] for v in cache.values()),
        kernel_cache=cache,
        final=dict(logits=steps[-1]["logits"], states=steps[-1]["states"]),
        steps=steps,
    )


def summary(r) -> str:
    s = r["seconds"]
    return (f"{r['machine']} cpu {r['cpu']} (numba/LLVM: {r['llvm_cpu']}), threads {r['threads']}"
            f", {r['frames']} frames: import {s['import_numpy_numba'] + s['import_minimovinet']:.1f}"
            f" s, load {s['load_model']:.1f} s, first frame {s['first_frame']:.2f} s, later "
            f"frames {s['later_frame_median']} s (median), script {s['script_total']:.1f} s; "
            f"kernels compiled {r['kernels_compiled']}, from cache "
            f"{r['kernels_loaded_from_cache']}; peak RSS {r['peak_rss_mib']:.0f} MiB; top-1 "
            f"{r['top1']['label'] or r['top1']['index']} {r['top1']['prob']:.4f}; final digest "
            f"logits {r['final']['logits'][:16]} states {r['final']['states'][:16]}")


def compare(reference_path, other_paths) -> int:
    ref = json.loads(Path(reference_path).read_text())
    status = 0
    for path in other_paths:
        other = json.loads(Path(path).read_text())
        problems = []
        if other["frames_sha256"] != ref["frames_sha256"]:
            problems.append("different input frames")
        if other["versions"] != ref["versions"]:
            problems.append(f"versions differ: {other['versions']} vs {ref['versions']}")
        if len(other["steps"]) != len(ref["steps"]):
            problems.append(f"{len(other['steps'])} steps vs {len(ref['steps'])}")
        for a, b in zip(ref["steps"], other["steps"]):
            for key in ("logits", "states"):
                if a[key] != b[key]:
                    problems.append(f"step {a['step']}: {key} digest differs")
        if problems:
            status = 1
            print(f"{path}: DIFFERS from {reference_path}:\n  " + "\n  ".join(problems[:10]))
        else:
            print(f"{path}: {len(ref['steps'])} steps, logits and all states bit-identical to "
                  f"{reference_path}")
    return status


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--clip", help="decode this video (needs PyAV)")
    src.add_argument("--frames", help="uint8 frames [T, H, W, 3] saved with numpy (.npy)")
    p.add_argument("--size", type=int, default=172, help="frame size when decoding (172)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--save-frames", help="write the (decoded) frames here (.npy)")
    p.add_argument("--threads", type=int, default=None,
                   help="minimovinet.set_num_threads(N) (default: NUMBA_NUM_THREADS)")
    p.add_argument("--float", action="store_true",
                   help="run the dequantized float32 view (model.dequantize()) instead: the "
                        "float kernels' caching and timings (its digests are not expected to "
                        "match across CPUs: the float pointwise kernel may reassociate sums)")
    p.add_argument("--json", help="write the full result (every step's digests) here")
    p.add_argument("--compare", nargs="+", metavar="JSON",
                   help="compare result files with the first one; exit 1 on any difference")
    args = p.parse_args(argv)
    if args.compare:
        if len(args.compare) < 2:
            p.error("--compare needs a reference and at least one other result")
        return compare(args.compare[0], args.compare[1:])
    if not args.clip and not args.frames:
        p.error("give --clip or --frames")
    r = run(args)
    if args.json:
        tmp = Path(args.json + ".part")
        tmp.write_text(json.dumps(r, indent=1))
        tmp.replace(args.json)
    print(summary(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
