"""Build the matrix of int8 TFLite MoViNet stream models converted by several TensorFlow
releases, committed under tests/data/tflite_matrix (run once, by hand; not in CI).

    python tools/make_tflite_matrix.py                       # every release in RELEASES
    python tools/make_tflite_matrix.py --releases 2.12,2.21  # rebuild only these
    python tools/make_tflite_matrix.py --keep-venvs          # keep /tmp/tfvenv-<release>

Why: users convert their fine-tuned models "with whatever TensorFlow they had", and the
converter's output varies with the release (an older one adds BROADCAST_TO, more QUANTIZE /
DEQUANTIZE / RESHAPE / CAST ops...).  For each release this creates a throwaway venv
(/tmp/tfvenv-<release>: that TensorFlow, tf-models-official with --no-deps, pyyaml, and
tf_keras from 2.16 on), runs tools/tflite_matrix_build.py in it (seeded random-weight official
models of a reduced block spec, converted to int8 with a stateful representative dataset, in
the settings of `jobs()`), and when every release is built, moves the files in place with
manifest.json: versions, settings, sha256, size and signature of each file, the reduced
spec as data, and the combinations a release could not convert with the reason.  Nothing is
moved when a release fails.  A rerun for some releases keeps the other releases' files.

Run it with the test venv's Python (it reads each file's signature with ai_edge_litert).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "tests" / "data" / "tflite_matrix"
BUILDER = ROOT / "tools" / "tflite_matrix_build.py"
sys.path.insert(0, str(ROOT / "tools"))
from make_int8_test_models import cpu_name  # noqa: E402  (the manifest's CPU, as there)

# release -> pins.  tf-models-official has no 2.21: its 2.20 modeling code runs on TF 2.21.
# Keras 2 is tf.keras up to TF 2.15 and the tf_keras package from 2.16 on.
RELEASES = {
    "2.12": dict(tensorflow="2.12.1", tf_models_official="2.12.1", tf_keras=None),
    "2.15": dict(tensorflow="2.15.1", tf_models_official="2.15.0", tf_keras=None),
    "2.17": dict(tensorflow="2.17.1", tf_models_official="2.17.0", tf_keras="2.17.0"),
    "2.19": dict(tensorflow="2.19.1", tf_models_official="2.19.1", tf_keras="2.19.0"),
    "2.21": dict(tensorflow="2.21.0", tf_models_official="2.20.0", tf_keras="2.21.0"),
}
NEWEST = max(RELEASES, key=lambda r: tuple(map(int, r.split("."))))
# (variant, positional encoding, io, per-channel weights) of the reduced-spec files.
SETTINGS = (
    ("stream", False, "float", True),
    ("stream", False, "int8", True),
    ("stream", False, "float", False),
    ("mobile", False, "float", True),
    ("mobile", False, "int8", True),
    ("stream", True, "float", True),
)
FULL_SIZE = ("a3", "stream", True, "float", True)     # the newest release only
MAX_FULL_SIZE_BYTES = 10 * 1024 * 1024


def file_name(release, model, variant, pe, io, per_channel):
    prefix = "" if model == "reduced" else f"{model}-"
    return (f"tf{release}-{prefix}{variant}{'-pe' if pe else ''}-{io}io-"
            f"{'perchannel' if per_channel else 'pertensor'}.tflite")


def jobs(release):
    out = [dict(model="reduced", variant=v, positional_encoding=pe, io=io, per_channel=pc)
           for v, pe, io, pc in SETTINGS]
    if release == NEWEST:
        model, v, pe, io, pc = FULL_SIZE
        out.append(dict(model=model, variant=v, positional_encoding=pe, io=io, per_channel=pc))
    for job in out:
        job["file"] = file_name(release, job["model"], job["variant"],
                                job["positional_encoding"], job["io"], job["per_channel"])
    return out


def requirements(release):
    pins = RELEASES[release]
    reqs = [f"tensorflow=={pins['tensorflow']}", "pyyaml"]
    if pins["tf_keras"]:
        reqs.append(f"tf-keras=={pins['tf_keras']}")
    return reqs, [f"tf-models-official=={pins['tf_models_official']}"]


def _run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        r = subprocess.run(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = Path(log).read_text().splitlines()[-25:]
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}); {log}:\n"
                           + "\n".join(tail))


def ensure_venv(release, venv_root, log):
    """/tmp/tfvenv-<release> with the release's pins (reused when its .ready marker says it
    holds exactly them)."""
    venv = Path(venv_root) / f"tfvenv-{release}"
    deps, no_deps = requirements(release)
    marker = venv / ".ready"
    wanted = " ".join(deps + ["--no-deps"] + no_deps)
    py = venv / "bin" / "python"
    if marker.exists() and marker.read_text().strip() == wanted and py.exists():
        return py
    if venv.exists():
        shutil.rmtree(venv)
    _run([_base_python(), "-m", "venv", venv], log)
    _run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], log)
    _run([py, "-m", "pip", "install", "-q", *deps], log)
    _run([py, "-m", "pip", "install", "-q", "--no-deps", *no_deps], log)
    marker.write_text(wanted + "\n")
    return py


def _base_python():
    """The interpreter the running venv was made from (Python 3.11 here: every release from
    2.12 on has wheels for it)."""
    return getattr(sys, "_base_executable", sys.executable)


def signature(path):
    """{'inputs': {name: 'dtype[shape]'}, 'outputs': {...}} of the file's one signature."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    runner = it.get_signature_runner()

    def fmt(details):
        return {name: f"{d['dtype'].__name__}[{','.join(str(int(s)) for s in d['shape'])}]"
                for name, d in sorted(details.items())}

    keys = list(it.get_signature_list())
    return dict(key=keys[0], inputs=fmt(runner.get_input_details()),
                outputs=fmt(runner.get_output_details()))


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_release(release, venv_root, work, log):
    """Run the builder of `release` into work/<release>; (entries, skipped, build info)."""
    py = ensure_venv(release, venv_root, log)
    out = Path(work) / release
    out.mkdir(parents=True)
    job_list = jobs(release)
    jobs_file = Path(work) / f"jobs-{release}.json"
    jobs_file.write_text(json.dumps(job_list, indent=1))
    _run([py, BUILDER, "--out", out, "--jobs", jobs_file], log)
    info = json.loads((out / "build.json").read_text())
    entries, skipped = [], []
    for job in job_list:
        result = info["jobs"].get(job["file"], dict(skipped="the builder did not reach it"))
        setting = dict(model=job["model"], variant=job["variant"],
                       positional_encoding=job["positional_encoding"], io=job["io"],
                       per_channel=job["per_channel"])
        common = dict(file=job["file"], release=release, tensorflow=info["tensorflow"],
                      tf_models_official=info["tf_models_official"], keras=info["keras"],
                      **setting)
        path = out / job["file"]
        if "skipped" not in result and job["model"] != "reduced" \
                and path.stat().st_size > MAX_FULL_SIZE_BYTES:
            result = dict(skipped=f"{path.stat().st_size:,} bytes: over the "
                                  f"{MAX_FULL_SIZE_BYTES:,} byte limit")
            path.unlink()
        if "skipped" in result:
            skipped.append(dict(common, why=result["skipped"]))
            continue
        entries.append(dict(common, converter=result["settings"], states=result["states"],
                            sha256=sha256(path), bytes=path.stat().st_size,
                            signature=signature(path),
                            seconds=dict(build=result["build_seconds"],
                                         convert=result["convert_seconds"])))
    return entries, skipped, info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--releases", default=",".join(RELEASES),
                    help=f"comma-separated, from {', '.join(RELEASES)} (default: all)")
    ap.add_argument("--keep-venvs", action="store_true", help="keep the throwaway venvs")
    ap.add_argument("--venv-root", default="/tmp", help="where the venvs go (default /tmp)")
    ap.add_argument("--target", default=str(TARGET), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    releases = [r.strip() for r in args.releases.split(",") if r.strip()]
    unknown = [r for r in releases if r not in RELEASES]
    if unknown:
        ap.error(f"unknown releases {unknown}; known: {', '.join(RELEASES)}")
    import tflite_matrix_build as B
    target = Path(args.target)
    old = json.loads((target / "manifest.json").read_text()) \
        if (target / "manifest.json").exists() else None
    t_start = time.time()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tflite-matrix-", dir=target.parent) as work:
        log = Path(work) / "build.log"
        entries, skipped, durations, versions = [], [], {}, {}
        try:
            for release in releases:
                t0 = time.time()
                print(f"== TensorFlow {release}: venv + build (log: {log})", flush=True)
                e, s, info = build_release(release, args.venv_root, work, log)
                entries += e
                skipped += s
                durations[release] = round(time.time() - t0)
                versions[release] = {k: info[k] for k in
                                     ("tensorflow", "tf_models_official", "keras", "numpy",
                                      "python")}
                print(f"== TensorFlow {release}: {len(e)} files, {len(s)} skipped, "
                      f"{durations[release]} s", flush=True)
        except Exception:
            kept = Path(tempfile.gettempdir()) / "tflite-matrix-failed.log"
            if log.exists():
                shutil.copy(log, kept)
            print(f"build failed: nothing moved into {target}; log: {kept}", file=sys.stderr)
            raise
        finally:
            if not args.keep_venvs:
                for release in releases:
                    shutil.rmtree(Path(args.venv_root) / f"tfvenv-{release}",
                                  ignore_errors=True)
        stage = Path(work) / "stage"
        stage.mkdir()
        # the releases not rebuilt keep their files and entries
        if old is not None:
            for key, keep in (("files", entries), ("skipped", skipped)):
                kept = [e for e in old.get(key, []) if e["release"] not in releases]
                keep[:0] = kept
            for e in old.get("files", []):
                if e["release"] not in releases:
                    shutil.copy2(target / e["file"], stage / e["file"])
            for r, v in old.get("releases", {}).items():
                if r not in releases:
                    versions.setdefault(r, v)
            for r, seconds in old.get("build_seconds", {}).items():
                if r not in releases and r != "total":
                    durations.setdefault(r, seconds)
        for e in entries:
            if e["release"] in releases:
                shutil.copy2(Path(work) / e["release"] / e["file"], stage / e["file"])
        order = {r: i for i, r in enumerate(RELEASES)}
        entries.sort(key=lambda e: (order.get(e["release"], 99), e["file"]))
        skipped.sort(key=lambda e: (order.get(e["release"], 99), e["file"]))
        manifest = dict(
            made_by="tools/make_tflite_matrix.py (builder: tools/tflite_matrix_build.py)",
            made_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
            cpu=cpu_name(),
            releases={r: versions[r] for r in sorted(versions, key=lambda r: order.get(r, 99))},
            model=dict(reduced_spec_id=B.REDUCED_ID, reduced_spec=B.REDUCED_SPEC,
                       variants=B.VARIANTS, num_classes=B.NUM_CLASSES,
                       height=B.HEIGHT, width=B.WIDTH, weight_seed=B.WEIGHT_SEED,
                       weights="tests/oracle.py randomization (WEIGHTS_VERSION 2)",
                       calibration=dict(clips=B.CALIB_CLIPS, frames=B.CALIB_FRAMES,
                                        seed=B.CALIB_SEED, stateful=True)),
            build_seconds=dict(durations, total=sum(durations.values())),
            files=entries, skipped=skipped)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        # swap in: the old directory goes only once the new one is complete
        backup = Path(work) / "old"
        if target.exists():
            target.rename(backup)
        stage.rename(target)
    total = sum(e["bytes"] for e in entries)
    for e in entries:
        print(f"{e['file']:<48} {e['bytes']:>10,}  {e['sha256'][:16]}")
    for s in skipped:
        print(f"{s['file']:<48} skipped: {s['why']}")
    print(f"{len(entries)} files, {total:,} bytes, {len(skipped)} skipped -> {target} "
          f"({round(time.time() - t_start)} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
