"""The int8 convolution kernels' AArch64 code, compiled on x86 (tools/aarch64_asm.py): what
Numba's JIT produces on a Raspberry Pi 5 (cortex-a76) uses SDOT, and on a Raspberry Pi 4
(cortex-a72, no dot-product extension) NEON widening multiplies, never SDOT.

The signatures are those the official A0 int8 model uses on aarch64 (it is run for one frame),
so this needs ../shared and is skipped without it.  No emulator: llvmlite's AArch64 backend.
Emulated runs of the same code (bit-exactness, no SIGILL) are tools/run_pi_checks.sh.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing  # noqa: E402

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import aarch64_asm as A  # noqa: E402


@pytest.fixture(scope="module")
def rows(shared_dir, tmp_path_factory):
    model = shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite"
    if not model.exists():
        missing(f"{model} is absent")
    # In a fresh process: the tool retargets the helper libraries Numba has already built in
    # the process, and x86 code compiled earlier in a test worker (e.g. the VNNI kernels'
    # helpers) cannot be compiled for AArch64.
    out = tmp_path_factory.mktemp("asm") / "rows.json"
    done = subprocess.run([sys.executable, str(TOOLS / "aarch64_asm.py"), "--model", str(model),
                           "--kernels", *A.CONV_KERNELS, "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    print("\n" + done.stdout)
    rows = json.loads(out.read_text())
    return {(r["kernel"], r["cpu"]): r for r in rows if r["cpu"] is not None}


def test_the_model_calls_the_conv_kernels_on_aarch64(rows):
    for kernel in A.CONV_KERNELS:
        for cpu in A.CPUS:
            assert (kernel, cpu) in rows, f"{kernel} is not called by the model on aarch64"


def test_pointwise_uses_sdot_on_cortex_a76(rows):
    """The 1x1 convs and the stem (int8 x int8 -> int32 reductions): SDOT on a Pi 5."""
    r = rows[("pointwise", "cortex-a76")]
    assert r["sdot"] > 0, r["neon_mnemonics"]


def test_pointwise_uses_neon_widening_multiplies_on_cortex_a72(rows):
    """On a Pi 4 (ARMv8.0, no dotprod) the same reduction is smull/smlal + saddw/sadalp,
    and SDOT would be an illegal instruction."""
    r = rows[("pointwise", "cortex-a72")]
    assert r["sdot"] == 0
    assert r["widening_mul"] > 0, r["neon_mnemonics"]
    assert r["neon"] > 0


@pytest.mark.parametrize("cpu", list(A.CPUS))
def test_depthwise_is_neon_vectorized(rows, cpu):
    """Depthwise convs multiply int8 inputs by int16-held weights into int32 sums: vectorized
    with NEON widening arithmetic (smull/smlal, or a 16-bit mul then saddw) on both CPUs."""
    r = rows[("depthwise", cpu)]
    assert r["neon"] > 0
    assert r["widening_mul"] + r["widening_add"] > 0, r["neon_mnemonics"]
    if cpu == "cortex-a72":
        assert r["sdot"] == 0


def test_no_sdot_anywhere_for_cortex_a72(rows):
    assert all(r["sdot"] == 0 for (k, cpu), r in rows.items() if cpu == "cortex-a72")


def test_classify_counts_known_instructions():
    asm = "\n".join(["f:", "\tsdot\tv0.4s, v1.16b, v2.16b", "\tsmull\tv3.8h, v4.8b, v5.8b",
                     "\tsadalp\tv6.4s, v3.8h", "\tadd\tx0, x0, #1", "\tldr\tq1, [x2]",
                     ".Lfunc_end0:"])
    c = A.classify(asm)
    assert (c["instructions"], c["neon"], c["sdot"], c["widening_mul"], c["widening_add"]) == \
        (5, 4, 1, 1, 1)
