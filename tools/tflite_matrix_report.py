"""Which files of the TFLite matrix (tests/data/tflite_matrix) minimovinet loads today, and
how each file's operators differ from the official int8 A0 stream file's.

    python tools/tflite_matrix_report.py [--markdown] [--no-run]

For each file of the manifest: TensorFlow release, settings, the operators whose presence or
count differs (vs the official file: ops it lacks `+OP×n`, ops only the official file has
`-OP`, and vs the newest release's file of the same settings: count changes `OP±n`), whether
`minimovinet.load` loads it (else the error line), as is and with the matrix's reduced block
spec added to minimovinet's BLOCK_SPECS in this process (minimovinet knows A0-A5 only: that
tells a file whose only fault is its architecture from one whose operators it cannot map),
and, when it loads, whether its logits over 4 frames equal LiteRT's built-in kernels' bit for
bit.  Then the load errors, grouped.  Run it with the test venv.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "tflite_matrix"
OFFICIAL = ROOT.parent / "shared" / "models" / "movinet_a0_stream_k600_int8.tflite"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
FRAMES = 4


def op_histogram(path) -> collections.Counter:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    return collections.Counter(op["op_name"] for op in it._get_ops_details())


def vs_official(hist, official) -> str:
    if official is None:
        return "(no official file)"
    extra = [f"+{op}×{n}" for op, n in sorted(hist.items()) if op not in official]
    lacking = [f"-{op}" for op in sorted(official) if op not in hist]
    return " ".join(extra + lacking) or "same op set"


def vs_newest(hist, newest) -> str:
    if newest is None:
        return ""
    out = []
    for op in sorted(set(hist) | set(newest)):
        d = hist.get(op, 0) - newest.get(op, 0)
        if d:
            out.append(f"{op}{d:+d}")
    return " ".join(out) or "="


def register_reduced_spec(manifest) -> str:
    """Add the matrix's reduced block spec to minimovinet's BLOCK_SPECS (in this process only:
    the importer matches a file's blocks against that dict), so that a file whose only fault
    is its architecture can be told from one whose operators minimovinet cannot map."""
    from minimovinet import config as C
    spec, name = manifest["model"]["reduced_spec"], manifest["model"]["reduced_spec_id"]
    stem = C.StemSpec(spec["stem"]["filters"], tuple(spec["stem"]["kernel"]),
                      tuple(spec["stem"]["stride"]))
    groups = tuple(C.GroupSpec(g["out_filters"], tuple(b["expand"] for b in g["blocks"]),
                               tuple(tuple(b["kernel"]) for b in g["blocks"]),
                               tuple(tuple(b["stride"]) for b in g["blocks"]))
                   for g in spec["groups"])
    head = C.HeadSpec(spec["head"]["project_filters"], spec["head"]["hidden_filters"])
    C.BLOCK_SPECS[name] = (stem, groups, head)
    return name


def try_load(path):
    """(model or None, 'ok' (structure recognised), 'ok, op by op: why' (not recognised: run
    as the file's ops) or the error line without the file's path)."""
    import minimovinet as mm
    try:
        model = mm.load(path)
        why = getattr(getattr(model, "program", None), "unrecognised", "")
        return model, (f"ok, op by op: {why}" if why else "ok")
    except Exception as e:          # the report's point: show what fails, and how
        line = next((l for l in str(e).splitlines() if l.strip()), "")
        return None, f"{type(e).__name__}: {line.replace(str(path) + ': ', '')}"


def error_kind(status: str) -> str:
    """An error line with its per-file details ("(...)", operator indices) dropped: what to
    group by."""
    status = re.sub(r"#\d+ ", "#N ", status)
    return re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)", "(...)", status)


def bit_exact(model, path, io) -> str:
    """minimovinet's logits vs LiteRT's built-in kernels over FRAMES random frames."""
    from int8_support import LiteRTStream
    from minimovinet.int8.reference import quantize as quantize_like_litert
    try:
        ref = LiteRTStream(path, "builtin")
        image = ref.input_details["image"]
        rng = np.random.default_rng(7)
        states = model.init_states()
        ref.reset(dict(states))
        for t in range(FRAMES):
            frame = rng.random(tuple(image["shape"]), dtype=np.float32)
            if image["dtype"] == np.int8:
                frame = quantize_like_litert(frame, *image["quantization"])
            mine, states = model(frame, states)
            theirs, _ = ref.step(frame)
            if not np.array_equal(np.asarray(mine).reshape(theirs.shape), theirs):
                diff = np.abs(np.asarray(mine, np.float64).reshape(theirs.shape) - theirs).max()
                return f"differs at frame {t} (max |diff| {diff:.3g})"
        return "bit-exact"
    except Exception as e:
        line = next((l for l in str(e).splitlines() if l.strip()), "")
        return f"run failed: {type(e).__name__}: {line}"


def settings(e) -> str:
    model = "" if e["model"] == "reduced" else e["model"] + " "
    return (f"{model}{e['variant']}{'+pe' if e['positional_encoding'] else ''} "
            f"{e['io']}-io {'per-channel' if e['per_channel'] else 'per-tensor'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="a Markdown table")
    ap.add_argument("--no-run", action="store_true", help="do not compare with LiteRT")
    args = ap.parse_args(argv)
    manifest = json.loads((DATA / "manifest.json").read_text())
    official = op_histogram(OFFICIAL) if OFFICIAL.exists() else None
    if official is not None:
        print(f"official {OFFICIAL.name}: " +
              " ".join(f"{op}×{n}" for op, n in sorted(official.items())))
    entries = manifest["files"]
    hists = {e["file"]: op_histogram(DATA / e["file"]) for e in entries}
    newest = max(manifest["releases"], key=lambda r: tuple(map(int, r.split("."))))
    by_setting = {settings(e): hists[e["file"]] for e in entries if e["release"] == newest}
    rows, errors = [], collections.defaultdict(list)
    plain = {e["file"]: try_load(DATA / e["file"])[1] for e in entries}
    spec_id = register_reduced_spec(manifest)
    for e in entries:
        path = DATA / e["file"]
        model, status = try_load(path)
        if model is not None and not args.no_run:
            status = status + ", " + bit_exact(model, path, e["io"])
        elif model is None:
            errors[error_kind(status)].append(e["file"])
        hist = hists[e["file"]]
        rows.append((e["file"], e["tensorflow"], settings(e), vs_official(hist, official),
                     vs_newest(hist, by_setting.get(settings(e))) if e["release"] != newest
                     else "(newest)", plain[e["file"]], status))
    head = ("file", "TF", "settings", "ops vs official", f"ops vs TF {newest}",
            "minimovinet.load", f"minimovinet.load with {spec_id} registered")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print("\n".join([r[0], *(f"    {h}: {v}" for h, v in zip(head[1:], r[1:]))]))
    loaded = sum(1 for r in rows if r[-1].startswith("ok"))
    recognised = sum(1 for r in rows if r[-1].startswith("ok") and "op by op" not in r[-1])
    print(f"\nminimovinet loads {sum(1 for v in plain.values() if v.startswith('ok'))} of "
          f"{len(rows)} files as is ({sum(1 for v in plain.values() if v == 'ok')} with the "
          f"MoViNet structure recognised, the others op by op), {loaded} with the reduced spec "
          f"({spec_id}) added to its BLOCK_SPECS ({recognised} recognised); the errors then:")
    for status, files in sorted(errors.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(files)} x {status}")
        for f in files:
            print(f"      {f}")
    for s in manifest.get("skipped", []):
        print(f"not built: {s['file']}: {s['why']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
