"""CRC32C throughput: the Numba loop of minimovinet.formats.crc32c vs the former NumPy scheme
vs the CRC32C packages on PyPI (when importable).

    python benchmarks/bench_crc32c.py [--mb 64] [--repeat 5] [--old-rev 22a2920 | --old FILE]

engines
  numba loop       minimovinet.formats.crc32c.crc32c (slicing-by-8, what the reader uses)
  old numpy        the GF(2) zero-operator scheme tf_checkpoint.py used before, read from git
                   history (`git show REV:minimovinet/formats/tf_checkpoint.py`) or from FILE
  crc32c           the `crc32c` package (hardware instruction where the CPU has one)
  google-crc32c    the `google-crc32c` package
Every engine checksums the same random buffer; the values must agree.  Reported: best and
median seconds of `--repeat` runs after one warm-up (which also compiles the Numba loop),
MB/s, and the time relative to the Numba loop.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD_PATH = "minimovinet/formats/tf_checkpoint.py"
OLD_REV = "22a2920"          # the last commit with the vectorised NumPy scheme


def load_old(rev: str, file: str | None):
    """The old tf_checkpoint module, loaded inside the minimovinet.formats package (its
    relative imports must resolve)."""
    if file is None:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{OLD_PATH}"],
                                capture_output=True, text=True, check=True).stdout
        file = str(Path(tempfile.mkdtemp(prefix="bench-crc32c-")) / "old_tf_checkpoint.py")
        Path(file).write_text(source)
    spec = importlib.util.spec_from_file_location("minimovinet.formats._old_tf_checkpoint", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                    # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def engines(args):
    sys.path.insert(0, str(ROOT))
    from minimovinet.formats.crc32c import crc32c
    found = [("numba loop", crc32c)]
    try:
        old = load_old(args.old_rev, args.old)
        found.append(("old numpy", old.crc32c))
    except (subprocess.CalledProcessError, OSError, AttributeError) as e:
        print(f"old numpy: not measured ({e})", file=sys.stderr)
    try:
        import crc32c as package
        found.append(("crc32c", package.crc32c))
    except ImportError:
        print("crc32c: not installed (pip install crc32c)", file=sys.stderr)
    try:
        import google_crc32c
        found.append(("google-crc32c", google_crc32c.value))
    except ImportError:
        print("google-crc32c: not installed (pip install google-crc32c)", file=sys.stderr)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="buffer size in MB (2**20 bytes)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old scheme")
    parser.add_argument("--old", help="a copy of the old tf_checkpoint.py instead of git")
    args = parser.parse_args()

    buf = np.random.default_rng(0).integers(0, 256, args.mb << 20, dtype=np.uint8)
    data = buf.tobytes()            # the packages take bytes; the others take either
    rows, expected = [], None
    for name, fn in engines(args):
        value = fn(data)                                     # warm-up (and Numba compile)
        expected = value if expected is None else expected
        if value != expected:
            raise SystemExit(f"{name}: CRC {value:08x}, the Numba loop gives {expected:08x}")
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - start)
        rows.append((name, min(times), statistics.median(times)))

    base = rows[0][1]
    print(f"CRC32C of {args.mb} MB (value {expected:08x}), best / median of {args.repeat}")
    print(f"{'engine':<15} {'best s':>9} {'median s':>9} {'MB/s':>8} {'x numba':>8}")
    for name, best, median in rows:
        print(f"{name:<15} {best:9.4f} {median:9.4f} {args.mb / best:8.0f} {best / base:8.2f}")


if __name__ == "__main__":
    main()
