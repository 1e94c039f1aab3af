"""Where quantization error enters: every tensor of the int8 program, dequantized, against the
float graph's value of the same tensor, frame by frame on held-back clips (each path carrying
its own states), as a signal-to-noise ratio per op output; and the logits' SNR and top-1
agreement with the float model.

    report = measure(int8_model, graph, clips)
    print(report.text(worst=15))          # worst layers first
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from . import runner as runner_module
from .float_graph import FloatGraphRunner
from .graph import Graph
from .quantize import dequantize, quantize


def snr_db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    if signal <= 0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


@dataclasses.dataclass
class LayerError:
    layer: str
    kind: str
    tensor: int
    snr_db: float


@dataclasses.dataclass
class QuantizationReport:
    layers: List[LayerError]          # network order
    logits_snr_db: float
    top1_agreement: float             # fraction of held-back frames with the float top-1
    frames: int
    settings: dict

    def worst(self, n: int = 10) -> List[LayerError]:
        return sorted(self.layers, key=lambda e: e.snr_db)[:n]

    def text(self, worst: int = 15) -> str:
        opts = ", ".join(f"{k} {v}" for k, v in self.settings.items())
        lines = [f"quantization error on {self.frames} held-back frame(s) ({opts}):",
                 f"  logits: SNR {self.logits_snr_db:.1f} dB, top-1 agreement with the float "
                 f"model {100 * self.top1_agreement:.1f} %",
                 "  per layer, worst first (SNR of the int8 tensor against the float one):"]
        for e in self.worst(worst):
            lines.append(f"  {e.snr_db:7.1f} dB  {e.layer} ({e.kind})")
        return "\n".join(lines)


def _unfused_runner(program):
    """A runner that stores every op's output (the ReZero MUL too; the same bits)."""
    saved = runner_module.FUSE_REZERO_ADD
    runner_module.FUSE_REZERO_ADD = False
    try:
        return runner_module.ProgramRunner(program)
    finally:
        runner_module.FUSE_REZERO_ADD = saved


def _measured_ops(program) -> List[Tuple[int, str, str]]:
    """(tensor, layer, kind) of every op output worth measuring: int8 tensors (a RESHAPE is
    its input's view) and the float ones of the float pools."""
    out = []
    for op in program.ops:
        t = op.outputs[0]
        spec = program.tensors[t]
        if op.kind in ("reshape", "cast") or spec.dtype == "int32":
            continue
        out.append((t, op.layer, op.kind))
    return out


def measure(model, graph: Graph, clips: Sequence[np.ndarray], settings=None
            ) -> QuantizationReport:
    """The report of `model` (an Int8Movinet made from `graph`) on `clips` [T, H, W, 3]."""
    program = model.program
    runner = _unfused_runner(program)
    float_runner = FloatGraphRunner(graph)
    measured = _measured_ops(program)
    energy: Dict[int, List[float]] = {t: [0.0, 0.0] for t, _, _ in measured}
    logit_energy = [0.0, 0.0]
    agree = frames = 0
    image_t = program.tensors[program.image]
    for clip in clips:
        fstates = float_runner.init_states()
        qstates = model.init_states()
        for t in range(clip.shape[0]):
            frame = np.ascontiguousarray(clip[None, t:t + 1], np.float32)
            flogits, fstates, fvalues = float_runner.step(frame, fstates)
            image = frame if image_t.dtype == "float32" else quantize(
                frame, image_t.scale, image_t.zero_point)
            qlogits, raw = runner.step(image, qstates)
            qstates = runner.feedback(raw)
            ws = runner.workspace()
            for tensor, _, _ in measured:
                spec = program.tensors[tensor]
                value = ws[tensor]
                real = (dequantize(value, spec.scale, spec.zero_point) if spec.dtype == "int8"
                        else np.asarray(value, np.float32))
                ref = np.asarray(fvalues[tensor], np.float64)
                energy[tensor][0] += float(np.sum(ref * ref))
                energy[tensor][1] += float(np.sum((real - ref) ** 2))
            ql = model.float_logits(qlogits).astype(np.float64).reshape(-1)
            fl = np.asarray(flogits, np.float64).reshape(-1)
            logit_energy[0] += float(np.sum(fl * fl))
            logit_energy[1] += float(np.sum((ql - fl) ** 2))
            agree += int(np.argmax(ql) == np.argmax(fl))
            frames += 1
    layers = [LayerError(layer, kind, t, snr_db(*energy[t])) for t, layer, kind in measured]
    return QuantizationReport(layers, snr_db(*logit_energy), agree / max(frames, 1), frames,
                              dict(settings or {}))
