"""Guest instructions per frame on emulated Raspberry Pi CPUs: minimovinet vs LiteRT (aarch64).

    python benchmarks/pi_instructions.py [--cpus cortex-a72,cortex-a76] [--threads 1,4]
        [--engines minimovinet,litert-builtin,litert-xnnpack] [--float] [--frames 4]
        [--warmup 2] [--tree DIR] [--before DIR] [--json FILE]

NOT A TIME.  This counts the aarch64 instructions the emulated CPU executes per frame (qemu
user mode, tools/run_under_aarch64.sh, with the TCG plugin benchmarks/qemu_insn_count.c).  On a
real Pi, instructions differ in cost (a 16-lane NEON multiply-accumulate against a scalar add)
and caches, memory bandwidth, the pipeline and the clock are not modelled at all.  It says how
much work each engine issues on the Pi's instruction set (a proxy for the Pi), not how long it
takes there.

Each (CPU, threads, engine) runs in its own emulated process on the same frames of a real clip
(decoded on x86, where PyAV is; passed as .npy), states carried from frame to frame, after
--warmup frames (JIT compilation and caches happen there).  The guest brackets each measured
frame with a marker syscall that the plugin sees, so start-up, imports, model loading and JIT
are outside the counts.  Reported per frame: the median over the frames of all threads' summed
instructions, the spread over the frames, the busiest thread's count, and the ratio
minimovinet / engine on the same CPU and thread count.  Several threads: counts are summed over
all threads and include what they execute while waiting (LiteRT's thread pool spins before it
sleeps; with more guest threads than host cores, peers are descheduled and the spinning grows:
a 4-thread count on this 2-core machine overstates what a Pi 4 / Pi 5 executes).

Engines:
  minimovinet        the int8 path on the int8 model (--model, default the official A0 int8
                     file in ../shared), mm.set_num_threads(n); minimovinet-FORM forces an
                     int8 1x1-conv form (MINIMOVINET_INT8_FORM=FORM, e.g. minimovinet-rows)
  before             the same from the checkout given by --before (before / after in one run)
  litert-builtin     LiteRT, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES (on x86 the same
                     bits as minimovinet; the final logits of the two are compared and the
                     maxdiff printed: LiteRT's aarch64 wheel was measured to differ)
  litert-xnnpack     LiteRT with its default delegate (XNNPACK), num_threads=n
  --float adds       minimovinet-float (minimovinet's float32 path; NumPy's BLAS for the 1x1
                     convs, as with the `fast` extra; MINIMOVINET_BLAS=0: the Numba kernels)
                     and litert-float32 (LiteRT, XNNPACK) on one float32 TFLite file: the
                     official A0 stream model with seeded random weights exported by
                     benchmarks/bench_float.py (needs TensorFlow on x86, once; cached)

Set up on first use, cached in benchmarks/.cache/ (not committed): qemu 7.2's plugin header
(include/qemu/qemu-plugin.h, from Debian's qemu source tarball, sha256 checked), the plugin
built with gcc, LiteRT's aarch64 wheel and threadpoolctl (host pip --target, the x86 venv's
versions), the frames.  The emulator userland and the aarch64 numpy / numba are
tools/run_under_aarch64.sh's.  Anything
missing (qemu without plugin support, gcc, the download, a checksum) stops the run with one
line saying what; no table is printed from a partial run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
HARNESS = ROOT / "tools" / "run_under_aarch64.sh"
PLUGIN_SOURCE = ROOT / "benchmarks" / "qemu_insn_count.c"
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = SHARED / "models" / "movinet_a0_stream_k600_int8.tflite"
DEFAULT_CLIP = SHARED / "media" / "carving_ice_172.mp4"

QEMU_TARBALL = "qemu_7.2+dfsg.orig.tar.xz"
QEMU_TARBALL_URL = "http://deb.debian.org/debian/pool/main/q/qemu/" + QEMU_TARBALL
QEMU_TARBALL_SHA256 = "91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f"
QEMU_HEADER_MEMBER = "qemu-7.2.0/include/qemu/qemu-plugin.h"
LITERT_DEFAULT_VERSION = "2.3.0"
THREADPOOLCTL_DEFAULT_VERSION = "3.8.0"
AARCH64_PIP_TAGS = ["--only-binary=:all:", "--platform", "manylinux_2_28_aarch64",
                    "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux2014_aarch64",
                    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
MARK_MAGIC = 0x4D4D4D4D                     # qemu_insn_count.c: lseek(-1, MAGIC << 32 | code)
MARK_START, MARK_FRAME = 1, 2
NOT_A_TIME = ("These are emulated instruction counts, NOT times: instructions differ in cost "
              "and qemu models no caches, memory, pipeline or clock.")


class SetupError(SystemExit):
    """A missing tool or file: one line, exit code 1."""
    def __init__(self, message):
        super().__init__(f"pi_instructions: {message}")


# ---- set-up on the host (x86) --------------------------------------------------------------

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_tools() -> str:
    """The qemu-aarch64 the harness runs (with -plugin support) and gcc; returns qemu's version."""
    if not HARNESS.exists():
        raise SetupError(f"{HARNESS} is missing (this checkout has no emulation harness)")
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if not qemu:
        raise SetupError("no qemu-aarch64: apt-get install qemu-user (or run "
                         "tools/run_under_aarch64.sh --setup-only, which does)")
    usage = subprocess.run([qemu, "-h"], capture_output=True, text=True).stdout
    if "-plugin" not in usage:
        raise SetupError(f"{qemu} has no TCG plugin support (-plugin is not in its -h)")
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout
    version = version.splitlines()[0] if version else "?"
    if " 7.2" not in version:
        print(f"note: {version}: the plugin is built against qemu 7.2's header (plugin API 1); "
              f"a qemu that refuses it fails the first run", file=sys.stderr)
    return version


def plugin_header() -> Path:
    """qemu 7.2's include/qemu/qemu-plugin.h, extracted from Debian's source tarball (fetched
    once, sha256 checked)."""
    header_dir = CACHE / "qemu-7.2-include"
    header = header_dir / "qemu-plugin.h"
    if header.exists():
        return header
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / QEMU_TARBALL
    if not tarball.exists() or sha256_of(tarball) != QEMU_TARBALL_SHA256:
        part = tarball.with_name(tarball.name + ".part")
        print(f"fetching {QEMU_TARBALL_URL} (23 MB, once)", file=sys.stderr)
        try:
            with urllib.request.urlopen(QEMU_TARBALL_URL, timeout=120) as r, \
                    open(part, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            part.unlink(missing_ok=True)
            raise SetupError(f"cannot download {QEMU_TARBALL_URL}: {e}") from None
        got = sha256_of(part)
        if got != QEMU_TARBALL_SHA256:
            part.unlink()
            raise SetupError(f"{QEMU_TARBALL_URL}: sha256 {got}, expected "
                             f"{QEMU_TARBALL_SHA256}; nothing kept")
        part.replace(tarball)
    with tarfile.open(tarball, "r:xz") as tar:
        try:
            member = tar.getmember(QEMU_HEADER_MEMBER)
        except KeyError:
            raise SetupError(f"{tarball} has no {QEMU_HEADER_MEMBER}") from None
        data = tar.extractfile(member).read()
    header_dir.mkdir(parents=True, exist_ok=True)
    part = header.with_name(header.name + ".part")
    part.write_bytes(data)
    part.replace(header)
    return header


def build_plugin() -> Path:
    """benchmarks/qemu_insn_count.c as a shared object, rebuilt when the source changes."""
    header = plugin_header()
    source_sha = hashlib.sha256(PLUGIN_SOURCE.read_bytes() + header.read_bytes()).hexdigest()
    so = CACHE / f"qemu_insn_count-{source_sha[:12]}.so"
    if so.exists():
        return so
    if not shutil.which("gcc"):
        raise SetupError("no gcc (needed to build the qemu plugin): apt-get install gcc")
    part = so.with_name(so.name + ".part")
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-shared", "-fPIC",
           "-I", str(header.parent), "-o", str(part), str(PLUGIN_SOURCE)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        part.unlink(missing_ok=True)
        raise SetupError(f"gcc could not build {PLUGIN_SOURCE.name}:\n{done.stderr[-2000:]}")
    part.replace(so)
    return so


def host_version(dist: str, default: str) -> str:
    """The x86 venv's version of a distribution (the guest gets the same one)."""
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:                                       # noqa: BLE001 (not installed)
        return default


def guest_site(litert: str, threadpoolctl: str) -> Path:
    """LiteRT's aarch64 wheel and threadpoolctl (minimovinet's `fast` extra: the float path's
    BLAS thread control; pure Python), without dependencies (the guest uses the harness's
    numpy), installed by the host's pip into a target directory for the guest's PYTHONPATH."""
    site = CACHE / f"guest-site-litert{litert}-threadpoolctl{threadpoolctl}"
    if (site / "ai_edge_litert" / "interpreter.py").exists() and \
            (site / "threadpoolctl.py").exists():
        return site
    part = site.with_name(site.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--no-warn-script-location", "--no-compile", "--no-deps", "--target", str(part),
           *AARCH64_PIP_TAGS, f"ai-edge-litert=={litert}", f"threadpoolctl=={threadpoolctl}"]
    print(f"pip install ai-edge-litert=={litert} threadpoolctl=={threadpoolctl} (aarch64) -> "
          f"{site}", file=sys.stderr)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not (part / "ai_edge_litert" / "interpreter.py").exists():
        shutil.rmtree(part, ignore_errors=True)
        raise SetupError(f"cannot install LiteRT's aarch64 wheel ai-edge-litert=={litert} "
                         f"(and threadpoolctl=={threadpoolctl}):\n{done.stderr[-2000:]}")
    part.replace(site)
    return site


def frames_file(clip: Path, n: int, size: int) -> Path:
    """The first n frames of the clip (looped if shorter) as uint8 [n, size, size, 3] .npy,
    decoded on x86 with PyAV through minimovinet.apps.video."""
    import numpy as np
    if not clip.exists():
        raise SetupError(f"{clip}: the clip is missing (../shared)")
    out = CACHE / f"frames-{clip.stem}-{size}-{n}.npy"
    if out.exists():
        return out
    sys.path.insert(0, str(ROOT))
    from minimovinet.apps.video import read_video
    try:
        frames = list(read_video(clip, size=(size, size), max_frames=n))
    except Exception as e:                                  # noqa: BLE001 (PyAV missing, ...)
        raise SetupError(f"cannot decode {clip}: {e}") from None
    if not frames:
        raise SetupError(f"{clip}: no frames decoded")
    while len(frames) < n:
        frames += frames[: n - len(frames)]
    CACHE.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.stem + ".part.npy")
    np.save(part, np.stack(frames))
    part.replace(out)
    return out


def float_tflite() -> Path:
    """The float32 A0 stream TFLite file of benchmarks/bench_float.py (seeded random weights),
    built with TensorFlow on x86 once."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_float
        return Path(bench_float.prepare("a0")["tflite"])
    except ImportError as e:
        raise SetupError(f"--float needs TensorFlow on x86 to export the float32 model: {e}") \
            from None


# ---- one emulated run ----------------------------------------------------------------------

def parse_counts(path: Path, frames: int) -> dict:
    """The plugin's file -> per-frame instruction counts (all threads summed, busiest thread)."""
    marks, vcpus = [], None
    for line in path.read_text().splitlines():
        word, *rest = line.split()
        if word == "vcpus":
            vcpus = int(rest[0])
        elif word == "mark":
            marks.append((int(rest[0]), [int(c) for c in rest[1:]]))
    codes = [code for code, _ in marks]
    if vcpus is None or codes != [MARK_START] + [MARK_FRAME] * frames:
        raise SetupError(f"{path}: expected 1 start and {frames} frame marks, got {codes[:20]}")
    total, busiest = [], []
    for (_, before), (_, after) in zip(marks, marks[1:]):
        per_thread = [a - b for a, b in zip(after, before)]
        total.append(sum(per_thread))
        busiest.append(max(per_thread))
    return dict(per_frame=total, busiest_per_frame=busiest, vcpus=vcpus,
                median=statistics.median(total), busiest=statistics.median(busiest),
                spread=(max(total) - min(total)) / statistics.median(total))


def run_engine(args, cpu, threads, engine, plugin, site, frames_npy, model, workdir) -> dict:
    counts = workdir / f"{cpu}-{threads}-{engine}.counts"
    counts.unlink(missing_ok=True)
    tree = args.before if engine.startswith("before") else args.tree
    env = dict(os.environ)
    env["PI_QEMU_PLUGIN"] = f"{str(plugin).replace(',', ',,')},out={str(counts).replace(',', ',,')}"
    env["NUMBA_NUM_THREADS"] = str(threads)
    env.pop("MINIMOVINET_INT8_FORM", None)
    form = engine.split("-", 1)[1] if engine.startswith(("minimovinet-", "before-")) else ""
    if form and form != "float":
        env["MINIMOVINET_INT8_FORM"] = form
    env["PI_PYTHONPATH"] = str(site)
    cmd = [str(HARNESS), "--cpu", cpu, str(Path(__file__).resolve()), "--guest",
           "--engine", engine, "--model", str(model), "--frames-npy", str(frames_npy),
           "--frames", str(args.frames), "--warmup", str(args.warmup),
           "--threads", str(threads), "--tree", str(tree)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        why = " (SIGILL: an instruction this CPU lacks)" if done.returncode == 132 else ""
        raise SetupError(f"{engine} on {cpu}, {threads} thread(s): exit code "
                         f"{done.returncode}{why}\n{done.stderr[-3000:]}")
    if not counts.exists():
        raise SetupError(f"{engine} on {cpu}: the plugin wrote no counts ({counts})\n"
                         f"{done.stderr[-2000:]}")
    guest = json.loads(done.stdout.strip().splitlines()[-1])
    r = parse_counts(counts, args.frames)
    r.update(guest=guest, wall_seconds=round(seconds, 1), engine=engine, cpu=cpu,
             threads=threads)
    return r


# ---- the guest side (emulated aarch64: numpy, numba and LiteRT only) -----------------------

def mark(code: int) -> None:
    """A syscall the plugin records (lseek on fd -1: fails with EBADF, changes nothing)."""
    try:
        os.lseek(-1, (MARK_MAGIC << 32) | code, os.SEEK_SET)
    except OSError:
        pass


def guest_engine(args):
    """(step(frame, states) -> (logits, states), initial states, info) for one engine."""
    import numpy as np
    engine = args.engine
    if engine.startswith(("minimovinet", "before")):
        sys.path.insert(0, args.tree)
        import minimovinet as mm
        mm.set_num_threads(args.threads)
        model = mm.load(args.model)
        info = dict(minimovinet=str(Path(mm.__file__).parent), threads=mm.get_num_threads())
        if not engine.endswith("-float"):
            from minimovinet.int8.ops import conv as int8_conv
            info["int8_form"] = getattr(int8_conv, "POINTWISE_FORM", None)
        if info["threads"] != args.threads:
            raise SystemExit(f"minimovinet runs {info['threads']} threads, asked {args.threads}")
        return (lambda frame, states: model(frame, states)), model.init_states(), info
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kwargs = dict(model_path=args.model, num_threads=args.threads)
    if engine == "litert-builtin":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = Interpreter(**kwargs).get_signature_runner()
    states = {name: np.zeros(d["shape"], d["dtype"])
              for name, d in runner.get_input_details().items() if name != "image"}

    def step(frame, states):
        out = runner(image=frame, **states)
        return out["logits"], {name: out[name] for name in states}
    return step, states, {}


def guest(args):
    import numpy as np
    import numba
    from llvmlite import binding as ll
    step, states, info = guest_engine(args)
    frames = np.load(args.frames_npy)                               # [N, H, W, 3] uint8
    inputs = [(f.astype(np.float32) / np.float32(255))[None, None]  # [1, 1, H, W, 3]
              for f in frames[: args.warmup + args.frames]]
    if len(inputs) < args.warmup + args.frames:
        raise SystemExit(f"{args.frames_npy}: {len(frames)} frames, need "
                         f"{args.warmup + args.frames}")
    for frame in inputs[: args.warmup]:
        logits, states = step(frame, states)
    mark(MARK_START)
    for frame in inputs[args.warmup:]:
        logits, states = step(frame, states)
        mark(MARK_FRAME)
    if args.engine.endswith("-float"):               # NumPy's BLAS for the 1x1 convs?
        try:
            from minimovinet.float32 import blas
            info["blas"] = bool(blas.usable())
        except ImportError:                          # a checkout without the BLAS form
            info["blas"] = False
    logits = np.ascontiguousarray(logits, np.float32)
    info.update(llvm_cpu=ll.get_host_cpu_name(), numba=numba.__version__,
                numpy=np.__version__, logits_sha256=hashlib.sha256(logits.tobytes()).hexdigest(),
                logits=logits.reshape(-1).tolist())
    print(json.dumps(info))


# ---- the table -----------------------------------------------------------------------------

def print_table(results, args):
    print(f"\nguest instructions per frame, {args.frames} frames after {args.warmup} warm-up, "
          f"states carried; all threads summed")
    head = (f"{'engine':<18}{'CPU':<12}{'thr':>4}{'instr/frame':>16}{'spread':>8}"
            f"{'busiest thread':>16}{'mm/engine':>11}{'(busiest)':>10}{'wall s':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        reference = {"litert-float32": "minimovinet-float",
                     "minimovinet-float": None}.get(r["engine"], "minimovinet")
        mine = next((m for m in results if m["cpu"] == r["cpu"] and m["threads"] == r["threads"]
                     and m["engine"] == reference), None)
        ratio = ratio_busiest = ""
        if mine and mine is not r:
            ratio = f"{mine['median'] / r['median']:.2f}x"
            ratio_busiest = f"{mine['busiest'] / r['busiest']:.2f}x"
        print(f"{r['engine']:<18}{r['cpu']:<12}{r['threads']:>4}{r['median']:>16,.0f}"
              f"{r['spread'] * 100:>7.1f}%{r['busiest']:>16,.0f}{ratio:>11}{ratio_busiest:>10}"
              f"{r['wall_seconds']:>8.0f}")
    print(f"\nspread = (max - min) / median over the frames; busiest thread = the median frame's "
          f"largest single-thread count; mm/engine = minimovinet (float rows: minimovinet-float)"
          f" / engine, all threads summed, (busiest): the same for the busiest threads.\n"
          f"{NOT_A_TIME}")
    logits = {}
    for r in results:
        if r["engine"] in ("minimovinet", "litert-builtin"):
            logits.setdefault((r["cpu"], r["threads"]), {})[r["engine"]] = r["guest"]["logits"]
    for (cpu, threads), pair in logits.items():
        if len(pair) == 2:
            a, b = pair["minimovinet"], pair["litert-builtin"]
            maxdiff = max(abs(x - y) for x, y in zip(a, b))
            print(f"{cpu}, {threads} thread(s): final logits, minimovinet vs litert-builtin: "
                  + ("bit-identical" if a == b else
                     f"differ, maxdiff {maxdiff:.4g} (on x86 the two are bit-identical; "
                     f"LiteRT's aarch64 built-in kernels compute other bits than its x86 ones)"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", default="cortex-a72,cortex-a76")
    p.add_argument("--threads", default="1", help="thread counts, e.g. 1,4 (default 1)")
    p.add_argument("--engines", default="minimovinet,litert-builtin,litert-xnnpack")
    p.add_argument("--float", action="store_true",
                   help="also minimovinet-float and litert-float32 on a float32 A0 TFLite file")
    p.add_argument("--frames", type=int, default=4, help="measured frames (default 4)")
    p.add_argument("--warmup", type=int, default=2, help="frames before counting (default 2)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="the int8 .tflite model")
    p.add_argument("--clip", default=str(DEFAULT_CLIP))
    p.add_argument("--tree", default=str(ROOT),
                   help="the minimovinet checkout the minimovinet engines run (default: this one)")
    p.add_argument("--before", help="another checkout, run as engine 'before' (added)")
    p.add_argument("--litert-version", default=None,
                   help="ai-edge-litert version for the guest (default: the x86 venv's)")
    p.add_argument("--json", help="write all results (every frame's counts) here")
    p.add_argument("--show", metavar="JSON", help="print the table of an earlier --json file")
    p.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--frames-npy", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.guest:
        args.threads = int(args.threads)
        return guest(args)

    if args.show:
        saved = json.loads(Path(args.show).read_text())
        args.frames, args.warmup = saved["frames"], saved["warmup"]
        print(saved["qemu"])
        print_table(saved["results"], args)
        print(f"wall time of that run: {saved['wall_seconds']:.0f} s")
        return
    t_start = time.perf_counter()
    engines = [e for e in args.engines.split(",") if e]
    if args.before:
        args.before = str(Path(args.before).resolve())
        if not (Path(args.before) / "minimovinet" / "__init__.py").exists():
            raise SetupError(f"--before {args.before}: not a minimovinet checkout")
        engines.append("before")
    if not (Path(args.tree) / "minimovinet" / "__init__.py").exists():
        raise SetupError(f"--tree {args.tree}: not a minimovinet checkout")
    args.tree = str(Path(args.tree).resolve())
    for e in engines:
        if e not in ("litert-builtin", "litert-xnnpack", "before") and \
                not e.startswith(("minimovinet", "before-")):
            raise SetupError(f"unknown engine {e!r}")
    if not Path(args.model).exists():
        raise SetupError(f"{args.model}: the int8 model is missing (../shared)")
    qemu_version = check_tools()
    plugin = build_plugin()
    site = guest_site(args.litert_version or host_version("ai-edge-litert", LITERT_DEFAULT_VERSION),
                      host_version("threadpoolctl", THREADPOOLCTL_DEFAULT_VERSION))
    frames_npy = frames_file(Path(args.clip), args.warmup + args.frames, 172)
    runs = [(e, args.model) for e in engines]
    if args.float:
        ftfl = str(float_tflite())
        runs += [("minimovinet-float", ftfl), ("litert-float32", ftfl)]
    workdir = CACHE / "counts"
    workdir.mkdir(parents=True, exist_ok=True)
    models = sorted({m for _, m in runs})
    print(f"{qemu_version}; plugin {plugin.name}; guest extras {site.name}; minimovinet "
          f"{args.tree}; models {', '.join(models)}; frames {frames_npy.name}", flush=True)
    print(NOT_A_TIME, flush=True)
    results = []
    for cpu in args.cpus.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            for engine, model in runs:
                guest_engine_name = "litert-xnnpack" if engine == "litert-float32" else engine
                r = run_engine(args, cpu, threads, guest_engine_name, plugin, site, frames_npy,
                               model, workdir)
                r["engine"], r["model"] = engine, model
                results.append(r)
                blas = {True: ", BLAS", False: ", no BLAS"}.get(r["guest"].get("blas"), "")
                print(f"  {engine:<18}{cpu:<12}{threads:>2} thr: {r['median']:>15,.0f} "
                      f"instructions/frame ({r['wall_seconds']:.0f} s{blas})", flush=True)
    print_table(results, args)
    wall = time.perf_counter() - t_start
    print(f"wall time of this run: {wall:.0f} s")
    if args.json:
        sys.path.insert(0, str(ROOT))
        from minimovinet.atomic import atomic_open
        with atomic_open(args.json, "w") as f:
            json.dump(dict(qemu=qemu_version, note=NOT_A_TIME, frames=args.frames,
                           warmup=args.warmup, wall_seconds=round(wall, 1),
                           results=results), f, indent=1)


if __name__ == "__main__":
    main()
