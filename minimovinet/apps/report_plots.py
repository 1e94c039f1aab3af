"""The evaluation report's pictures as PNG bytes: the confusion matrix as an annotated heat map
and the top-1 accuracy by frames seen.  Needs matplotlib (the ``plot`` extra; a `PlotError`
says so); drawn on an Agg canvas, no display and no pyplot state."""
from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np

from .classify import import_matplotlib

__all__ = ["confusion_png", "accuracy_by_frame_png"]

DPI = 100


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def confusion_png(classes: Sequence[str], matrix, title: str = "") -> bytes:
    """Rows actual, columns predicted; colour = share of the row, text = count."""
    Figure, FigureCanvasAgg = import_matplotlib()
    cm = np.asarray(matrix, np.int64)                                      # [K, K]
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)   # [K, K]
    side = min(max(4.0, 0.55 * len(classes) + 2.5), 30.0)
    fig = Figure(figsize=(side + 1.5, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the actual class")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j] or i == j:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    return _png(fig)


def accuracy_by_frame_png(accuracy: Sequence[float], fps: Optional[float] = None,
                          title: str = "") -> bytes:
    """Top-1 accuracy after 1, 2, ... frames (seconds on a second axis when fps is known)."""
    Figure, FigureCanvasAgg = import_matplotlib()
    accuracy = np.asarray(accuracy, np.float64)                              # [T]
    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    frames = np.arange(1, len(accuracy) + 1)
    ax.plot(frames, accuracy, marker="o" if len(frames) <= 60 else None, markersize=3)
    ax.set_xlabel("frames seen")
    ax.set_ylabel("top-1 accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0.5, len(accuracy) + 0.5)
    ax.grid(True, alpha=0.3)
    if fps:
        top = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
        top.set_xlabel("seconds")
    ax.set_title(title or "accuracy by frames seen")
    fig.tight_layout()
    return _png(fig)
