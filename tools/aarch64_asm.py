"""The AArch64 assembly Numba would produce for the hot int8 kernels on a Raspberry Pi 4 / Pi 5,
printed on x86 without emulation, with counts of NEON and SDOT instructions.

    python tools/aarch64_asm.py                     # counts per kernel and CPU (a table)
    python tools/aarch64_asm.py --asm pointwise     # also print that kernel's assembly
    python tools/aarch64_asm.py --cpu cortex-a76 --kernels pointwise depthwise --json out.json

How: the signatures are the ones the model uses on aarch64 (the official A0 int8 model from
../shared is run for one frame with the aarch64 pointwise form; `KERNELS` below names the
kernels, read from `int8.kernels.SERIAL`).  For each signature the kernel is compiled again by
Numba on this machine while its unoptimized LLVM modules are recorded; they are retargeted to
`aarch64-unknown-linux-gnu` and put through Numba's own optimization pipeline (its function
passes, its "cheap" module passes and its full O3 module passes, the same code as
numba.core.codegen) with an LLVM AArch64 target machine for the CPU, created the way Numba's
JIT creates it on the board: cpu name and feature string as LLVM detects them from a Raspberry
Pi 4 / Pi 5 /proc/cpuinfo (`CPUS`, measured under emulation with tools/run_under_aarch64.sh),
then compiled to assembly by llvmlite's AArch64 backend (the x86 llvmlite wheel contains it).
The serial builds are inspected (the parallel builds wrap the same loops in a gufunc).

Checked against Numba's own assembly on the emulated CPUs (`tools/run_under_aarch64.sh --cpu
CPU tools/aarch64_asm.py --native`): the same SDOT and widening-instruction counts for every
kernel, NEON counts within 2, instruction totals within 7%.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:            # this checkout's minimovinet, not an installed one
    sys.path.insert(0, str(PROJECT))
DEFAULT_MODEL = PROJECT.parent / "shared" / "models" / "movinet_a0_stream_k600_int8.tflite"

# The hot int8 kernels (names in int8.kernels.SERIAL), most time first.  Kernels that the model
# does not call on aarch64 are listed as such.  Update this list when kernels are renamed/added.
KERNELS = ["pointwise", "depthwise", "pad_copy", "lut2", "lut", "mul_add", "avg_pool",
           "quantize", "dequantize", "sum", "mean", "div", "add", "mul", "im2col",
           "pointwise_rows"]
# The int8 convolutions: the 1x1 convs and the stem (im2col patches) run `pointwise`, the
# spatial and temporal depthwise convs `depthwise`.
CONV_KERNELS = ["pointwise", "depthwise"]

TRIPLE = "aarch64-unknown-linux-gnu"
# LLVM's host CPU name and feature string under emulation with a Raspberry Pi 4 / Pi 5
# /proc/cpuinfo (llvmlite.binding.get_host_cpu_name() / get_host_cpu_features().flatten()):
# what Numba's JIT passes to LLVM on the board.  cortex-a76 implies +dotprod (SDOT).
CPUS = OrderedDict([
    ("cortex-a72", "-aes,+crc,+fp-armv8,+neon,-rand,-sha2,-sve"),                 # Pi 4
    ("cortex-a76", "+aes,+crc,+fp-armv8,+lse,+neon,-rand,+sha2,-sve"),            # Pi 5
])

# ---- instruction classes ----------------------------------------------------------------------
DOT = {"sdot", "udot", "usdot", "sudot"}
WIDENING_MUL = {"smull", "smull2", "umull", "umull2", "smlal", "smlal2", "umlal", "umlal2",
                "smlsl", "smlsl2", "sqdmull", "sqdmull2", "sqdmlal", "sqdmlal2"}
WIDENING_ADD = {"saddw", "saddw2", "saddl", "saddl2", "sadalp", "saddlp", "uaddw", "uaddw2",
                "uaddl", "uaddl2", "uadalp", "uaddlp", "sxtl", "sxtl2", "sshll", "sshll2",
                "uxtl", "uxtl2", "ushll", "ushll2", "saddlv", "uaddlv"}
_VREG = re.compile(r"\bv\d+\.(?:\d+)?[bhsd]\b|\bq\d+\b")


def classify(asm: str) -> dict:
    """Counts of one function's instructions: total, NEON (any vector-register operand),
    dot products (sdot/udot), widening multiplies (smull/smlal...), widening adds and
    extensions (saddw/sadalp/sxtl...)."""
    counts = dict(instructions=0, neon=0, sdot=0, widening_mul=0, widening_add=0)
    mnemonics = {}
    for line in asm.splitlines():
        s = line.strip()
        if not s or s.startswith((".", "//", ";", "#")) or s.endswith(":"):
            continue
        op, _, operands = s.partition("\t") if "\t" in s else s.partition(" ")
        op = op.strip().lower()
        counts["instructions"] += 1
        if _VREG.search(operands):
            counts["neon"] += 1
            mnemonics[op] = mnemonics.get(op, 0) + 1
        if op in DOT:
            counts["sdot"] += 1
        elif op in WIDENING_MUL:
            counts["widening_mul"] += 1
        elif op in WIDENING_ADD:
            counts["widening_add"] += 1
    counts["neon_mnemonics"] = dict(sorted(mnemonics.items(), key=lambda kv: -kv[1]))
    return counts


# ---- signatures the model uses on aarch64 -----------------------------------------------------

def model_signatures(model_path=DEFAULT_MODEL, kernels=KERNELS) -> "OrderedDict[str, list]":
    """{kernel: [signature, ...]} of the SERIAL int8 kernels as the model calls them on aarch64:
    the official int8 model run for one frame with the aarch64 choices (the int8 x int8
    `pointwise` reduction for the 1x1 convs and the stem, no x86-only fast path)."""
    import numpy as np

    import minimovinet as mm
    from minimovinet.int8 import kernels as K
    from minimovinet.int8.ops import conv
    saved = conv.POINTWISE_FORM
    conv.POINTWISE_FORM = "reduce"              # what int8.ops.conv picks on aarch64
    try:
        with _record_calls(K.SERIAL, kernels) as calls:
            model = mm.load(model_path)          # load time: the tables of ADD / MUL
            model(np.zeros((1, 1, model.height, model.width, 3), np.float32),
                  model.init_states())
    finally:
        conv.POINTWISE_FORM = saved
    return OrderedDict((k, calls.signatures[k]) for k in kernels if k in calls.signatures)


class _record_calls:
    """Wraps the SERIAL dispatchers to record the argument types of every call (the model and
    its load-time table building call them; both count)."""

    def __init__(self, ns, kernels):
        self.ns, self.kernels = ns, kernels
        self.signatures = {}

    def __enter__(self):
        from numba import typeof
        self.saved = {}
        for k in self.kernels:
            disp = getattr(self.ns, k, None)
            if disp is None:
                continue
            self.saved[k] = disp

            def wrapper(*args, _disp=disp, _k=k):
                sig = tuple(typeof(a) for a in args)
                seen = self.signatures.setdefault(_k, [])
                if sig not in seen:
                    seen.append(sig)
                return _disp(*args)
            setattr(self.ns, k, wrapper)
        return self

    def __exit__(self, *exc):
        for k, disp in self.saved.items():
            setattr(self.ns, k, disp)


# ---- compiling for AArch64 ---------------------------------------------------------------------

_initialized = False


def _llvm():
    global _initialized
    import llvmlite.binding as llvm
    if not _initialized:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _initialized = True
    return llvm


def target_machine(cpu: str):
    """An AArch64 target machine as Numba's JITCPUCodegen creates it on the board."""
    llvm = _llvm()
    from numba.core import config
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=cpu, features=CPUS[cpu], opt=int(config.OPT),
                                        reloc="default", codemodel="jitdefault", jit=True)


class _Recorder:
    """While active (`with _Recorder():`), records for every Numba code library built its LLVM
    modules before any optimization and the libraries it links (helpers such as np.empty or
    array.max are compiled once per process into libraries of their own and linked into each
    kernel, where the final module passes inline them).  Numba's methods are restored and the
    records dropped on exit."""

    active = None

    def __enter__(self):
        from numba.core import codegen
        self.modules, self.links, self.keep = {}, {}, []
        cls = self.cls = codegen.CPUCodeLibrary
        self.saved = add_module, add_link = cls.add_llvm_module, cls.add_linking_library
        rec = self

        def add_llvm_module(self, ll_module):
            rec.modules.setdefault(id(self), []).append(str(ll_module))
            rec.keep.append(self)
            return add_module(self, ll_module)

        def add_linking_library(self, library):
            rec.links.setdefault(id(self), []).append(library)
            rec.keep.append(self)
            return add_link(self, library)
        cls.add_llvm_module = add_llvm_module
        cls.add_linking_library = add_linking_library
        _Recorder.active = self
        return self

    def __exit__(self, *exc):
        self.cls.add_llvm_module, self.cls.add_linking_library = self.saved
        _Recorder.active = None
        self.modules, self.links, self.keep = {}, {}, []

    def own_modules(self, library):
        """The library's own modules before optimization (None for a library built before
        recording began, e.g. numba's runtime), and the libraries it links."""
        seen, links = set(), []
        for lib in self.links.get(id(library), []):
            if id(lib) not in seen:
                seen.add(id(lib))
                links.append(lib)
        return self.modules.get(id(library)), links


def kernel_library(dispatcher, signature):
    """Numba's code library for `dispatcher` at `signature`, compiled anew (no on-disk cache);
    call it inside `with _Recorder():`, which keeps its modules before optimization."""
    fresh = _fresh_compile(dispatcher, signature)
    return fresh.overloads[tuple(signature)].library


def _fresh_compile(dispatcher, signature):
    """The dispatcher's function compiled anew for `signature`, without the on-disk cache
    (numba does not show the assembly of cached code)."""
    import numba
    fresh = numba.jit(**dispatcher.targetoptions)(dispatcher.py_func)
    fresh.compile(tuple(signature))
    return fresh


class _AArch64Codegen:
    """Numba's pass-manager construction (numba.core.codegen.CPUCodegen) on another target
    machine: the same methods, bound to an object whose `_tm` is the AArch64 machine."""

    def __init__(self, tm):
        from numba.core import codegen
        self._tm = tm
        self._loopvect = False          # numba's defaults (config.OPT is not 'max')
        self._opt_level = 0
        self._cg = codegen.CPUCodegen

    def function_passes(self):
        return self._cg._function_pass_manager(self)

    def module_passes(self, **kwargs):
        return self._cg._module_pass_manager(self, **kwargs)

    def _pass_builder(self, **kwargs):
        return self._cg._pass_builder(self, **kwargs)


def compile_aarch64(library, cpu: str, _done=None):
    """`library` (and every library it links) optimized as Numba finalizes a library, for
    `cpu`: function passes on each of its modules, link them, link the libraries it uses
    (each finalized the same way first, exports made linkonce_odr), the "cheap" module
    passes, reference-count pruning, the full module passes.  Returns (module, asm)."""
    llvm = _llvm()
    from numba.core import config
    from numba.core.runtime.nrtopt import remove_redundant_nrt_refct
    tm = target_machine(cpu)
    cg = _AArch64Codegen(tm)
    layout = str(tm.target_data)
    done = {} if _done is None else _done

    def retarget(text):
        m = llvm.parse_assembly(text)
        m.triple = TRIPLE
        m.data_layout = layout
        return m

    def finalize(lib):
        if id(lib) in done:
            return done[id(lib)]
        rec = _Recorder.active
        own, links = rec.own_modules(lib) if rec is not None else (None, [])
        if own is None:                      # built before recording: its final module
            final = retarget(str(lib._get_module_for_linking()))
            done[id(lib)] = final
            return final
        final = None
        for text in own:
            m = retarget(text)
            for fn in m.functions:
                if not fn.is_declaration:
                    fpm, pb = cg.function_passes()
                    fpm.run(fn, pb)
            if not config.LLVM_REFPRUNE_PASS:
                m = remove_redundant_nrt_refct(m)
            if final is None:
                final = m
            else:
                final.link_in(m)
        for linked in links:
            final.link_in(_for_linking(finalize(linked)), preserve=True)
        mpm, mpb = cg.module_passes(loop_vectorize=cg._loopvect, slp_vectorize=False,
                                    opt=cg._opt_level, cost="cheap")
        mpm.run(final, mpb)
        if not config.LLVM_REFPRUNE_PASS:
            final = remove_redundant_nrt_refct(final)
        mpm, mpb = cg.module_passes()
        mpm.run(final, mpb)
        final.verify()
        done[id(lib)] = final
        return final

    final = finalize(library)
    return final, tm.emit_assembly(final)


def _for_linking(module):
    """numba's CPUCodeLibrary._get_module_for_linking: exported definitions -> linkonce_odr."""
    llvm = _llvm()
    mod = module.clone()
    for fn in mod.functions:
        if not fn.is_declaration and fn.linkage == llvm.Linkage.external:
            fn.linkage = "linkonce_odr"
    return mod


def function_asm(asm: str, functions, py_name: str) -> "OrderedDict[str, str]":
    """{symbol: assembly} of the compiled kernel's own function(s) in `asm` (not the CPython
    wrapper); `functions`: the LLVM functions of the module."""
    out = OrderedDict()
    for fn in functions:
        if fn.is_declaration or py_name not in fn.name or fn.name.startswith(("cpython.",
                                                                               "cfunc.")):
            continue
        m = re.search(r"^" + re.escape(fn.name) + r":.*?(?=^\.Lfunc_end)", asm, re.S | re.M)
        if m:
            out[fn.name] = m.group(0)
    return out


def kernel_report(kernels=KERNELS, cpus=tuple(CPUS), model_path=DEFAULT_MODEL, keep_asm=(),
                  native=False):
    """[{kernel, signature, cpu, counts..., asm?}] for every kernel the model calls.
    native=True: numba's own assembly for the machine it runs on (to check this tool under
    emulation: tools/run_under_aarch64.sh tools/aarch64_asm.py --native)."""
    with _Recorder():           # from before anything compiles: every helper is recorded
        return _kernel_report(kernels, cpus, model_path, keep_asm, native)


def _kernel_report(kernels, cpus, model_path, keep_asm, native):
    from minimovinet.int8 import kernels as K
    sigs = model_signatures(model_path, kernels)
    rows = []
    for k in kernels:
        if k not in sigs:
            rows.append(dict(kernel=k, signature=None, cpu=None, note=(
                "not in int8.kernels.SERIAL" if not hasattr(K.SERIAL, k) else
                "not called by the model on aarch64")))
            continue
        disp = getattr(K.SERIAL, k)
        for sig in sigs[k]:
            if native:
                import llvmlite.binding as llvm
                fresh = _fresh_compile(disp, sig)
                library = fresh.overloads[tuple(sig)].library
                funcs = function_asm(fresh.inspect_asm(tuple(sig)),
                                     list(library.get_defined_functions()),
                                     disp.py_func.__name__)
                cpu = llvm.get_host_cpu_name()
                row = dict(kernel=k, signature=", ".join(map(str, sig)), cpu=cpu,
                           **classify("\n".join(funcs.values())))
                rows.append(row)
                continue
            library = kernel_library(disp, sig)
            for cpu in cpus:
                module, asm = compile_aarch64(library, cpu)
                funcs = function_asm(asm, module.functions, disp.py_func.__name__)
                body = "\n".join(funcs.values())
                row = dict(kernel=k, signature=", ".join(map(str, sig)), cpu=cpu,
                           **classify(body))
                if k in keep_asm:
                    row["asm"] = body
                rows.append(row)
    return rows


def format_table(rows) -> str:
    lines = [f"{'kernel':<15} {'cpu':<11} {'instr':>6} {'NEON':>5} {'SDOT':>5} "
             f"{'wide-mul':>8} {'wide-add':>8}  most frequent NEON mnemonics"]
    for r in rows:
        if r["cpu"] is None:
            lines.append(f"{r['kernel']:<15} ({r['note']})")
            continue
        top = ", ".join(f"{m} {n}" for m, n in list(r["neon_mnemonics"].items())[:6])
        lines.append(f"{r['kernel']:<15} {r['cpu']:<11} {r['instructions']:>6} {r['neon']:>5} "
                     f"{r['sdot']:>5} {r['widening_mul']:>8} {r['widening_add']:>8}  {top}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--kernels", nargs="+", default=KERNELS)
    p.add_argument("--cpu", nargs="+", default=list(CPUS), choices=list(CPUS))
    p.add_argument("--asm", nargs="*", default=(), metavar="KERNEL",
                   help="print the assembly of these kernels")
    p.add_argument("--json", help="write the rows (with the assembly of --asm kernels) here")
    p.add_argument("--native", action="store_true",
                   help="numba's own assembly for this machine instead (run under emulation "
                        "to check the cross-compiled counts)")
    args = p.parse_args(argv)
    if not Path(args.model).exists():
        print(f"{args.model}: the official int8 model is absent (../shared): the kernels' "
              f"signatures come from running it", file=sys.stderr)
        return 2
    rows = kernel_report(args.kernels, args.cpu, args.model, keep_asm=set(args.asm),
                         native=args.native)
    for r in rows:
        if "asm" in r:
            print(f"==== {r['kernel']} on {r['cpu']} ({r['signature']})")
            print(r["asm"])
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
