"""Self-test of the emulation harness (tools/run_pi_checks.sh runs it).

Compiles an int8 dot product with numba for the CPU numba detects, reports whether its
assembly uses SDOT, and runs it.  Under `--cpu cortex-a76` the Raspberry Pi 5 /proc/cpuinfo must
make numba pick cortex-a76 and emit SDOT; under `--cpu cortex-a72` with NUMBA_CPU_NAME=cortex-a76
(code for a Pi 5 run on a Pi 4) the emulator must stop the process with SIGILL (exit code 132):
the proof that an illegal instruction in the real runs would be caught.
"""
import json
import re

import numpy as np
from llvmlite import binding as ll
from numba import njit, typeof


@njit
def dot(a, b):
    s = np.int32(0)
    for i in range(a.shape[0]):
        s += np.int32(a[i]) * np.int32(b[i])
    return s


a = np.tile(np.arange(-128, 128, dtype=np.int16), 8).astype(np.int8)
b = a[::-1].copy()
expected = int(np.dot(a.astype(np.int64), b.astype(np.int64)))
dot.compile((typeof(a), typeof(b)))
asm = dot.inspect_asm(dot.signatures[0])
report = dict(llvm_cpu=ll.get_host_cpu_name(),
              sdot=len(re.findall(r"\bsdot\b", asm)),
              smull=len(re.findall(r"\bsmull2?\b|\bsmlal2?\b", asm)))
print(json.dumps(report), flush=True)
got = int(dot(a, b))
print(json.dumps(dict(result=got, expected=expected, ok=got == expected)), flush=True)
raise SystemExit(0 if got == expected else 1)
