"""A small labelled video set anyone can make without a download: shapes that move or turn.

    from minimovinet.apps.synthetic import make_motion_dataset
    dataset = make_motion_dataset("motions")      # motions/train/<class>/*.mp4, motions/test/...
    dataset.train, dataset.test, dataset.classes

    python -m minimovinet.apps.synthetic motions  # the same from a shell

The class is the motion only (a disk, square or triangle moving left, right, up or down; a
clock hand turning clockwise or anticlockwise); shape, colours, size, speed and position are
random in every clip, so a classifier must look at how things move, not at what they are.
Clips are short (10 frames at 5 fps, the A0 model's rate), written as H.264 mp4 with PyAV (the
``video`` extra).  Everything is drawn from one seed: the same seed gives the same pixels.
Used by the tests and the README's train / evaluate / classify example.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError, MissingDependencyError
from .video import INSTALL_HINT

__all__ = ["MOTIONS", "SyntheticSet", "render_clip", "write_video", "make_motion_dataset"]

# class folder name -> (kind, directions): each clip draws one of its class's directions.
# Mirror images (left / right, clockwise / anticlockwise) share a class because the official
# models were trained with random horizontal flips, so their features hardly tell them apart;
# up and down share one too (A0's features separate them poorly: 60-70% in a quick test).
MOTIONS = {
    "sideways": ("move", ((-1, 0), (1, 0))),
    "up_or_down": ("move", ((0, -1), (0, 1))),
    "turning": ("turn", (1, -1)),
    "growing": ("scale", (1,)),
    "shrinking": ("scale", (-1,)),
}
SUPERSAMPLE = 2          # shapes are drawn at twice the size and averaged down (smooth edges)


@dataclasses.dataclass(frozen=True)
class SyntheticSet:
    """Where `make_motion_dataset` wrote the clips: one sub-folder per class in each split."""
    root: Path
    train: Path
    test: Path
    classes: Tuple[str, ...]


# ---- drawing ---------------------------------------------------------------------------------

def _colours(rng) -> Tuple[np.ndarray, np.ndarray]:
    """A background and a shape colour far enough apart to see (RGB floats in [0, 1])."""
    background = rng.uniform(0.35, 0.65) + rng.uniform(-0.05, 0.05, 3)     # a greyish tone
    while True:
        shape = rng.uniform(0.0, 1.0, 3)
        if np.abs(shape - background).sum() > 0.9:
            return background, shape


def _checks(dx, dy, cell) -> np.ndarray:
    """A checker pattern that moves (and scales) with the shape: 1 on dark cells, else 0."""
    return ((np.floor(dx / cell) + np.floor(dy / cell)) % 2).astype(np.float32)


def _shape_mask(kind: str, xs, ys, cx, cy, r):
    """(coverage, checks) of a disk, square or triangle of radius r centred at (cx, cy)."""
    dx, dy = xs - cx, ys - cy
    if kind == "disk":
        inside = dx * dx + dy * dy <= r * r
    elif kind == "square":
        inside = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    else:  # an upright triangle: below the two slanted edges, above the base
        inside = (dy <= 0.6 * r) & (dy >= -r + 2.0 * np.abs(dx))
    return inside, _checks(dx, dy, 0.5 * r)


def _hand_mask(xs, ys, cx, cy, length, width, angle) -> np.ndarray:
    """A clock hand: a bar from the centre outwards at `angle` (radians, clockwise on screen)."""
    ux, uy = np.cos(angle), np.sin(angle)
    along = (xs - cx) * ux + (ys - cy) * uy
    across = -(xs - cx) * uy + (ys - cy) * ux
    inside = (along >= -0.15 * length) & (along <= length) & (np.abs(across) <= width)
    return inside, _checks(along, across, width)


def _move_masks(rng, direction, frames: int, n: int, xs, ys):
    """Masks of a shape crossing the frame in `direction` at a random speed."""
    kind = rng.choice(["disk", "square", "triangle"])
    r = rng.uniform(0.16, 0.22) * n
    speed = rng.uniform(0.045, 0.075) * n                 # pixels per frame
    travel = speed * (frames - 1)
    dx, dy = direction
    # start so that the whole path stays roughly inside the frame
    along0 = rng.uniform(r, max(r, n - r - travel)) if travel < n - 2 * r else r
    across = rng.uniform(1.2 * r, n - 1.2 * r)
    for t in range(frames):
        along = along0 + speed * t
        if dx:
            cx, cy = (along if dx > 0 else n - along), across
        else:
            cx, cy = across, (along if dy > 0 else n - along)
        yield _shape_mask(kind, xs, ys, cx, cy, r)


def _turn_masks(rng, sense: int, frames: int, n: int, xs, ys):
    """Masks of a clock hand turning about a point near the centre."""
    cx, cy = rng.uniform(0.4, 0.6, 2) * n
    length = rng.uniform(0.34, 0.42) * n
    width = rng.uniform(0.06, 0.08) * n
    step = np.deg2rad(rng.uniform(18.0, 30.0))            # radians per frame
    angle = rng.uniform(0.0, 2 * np.pi)
    for t in range(frames):
        yield _hand_mask(xs, ys, cx, cy, length, width, angle + sense * step * t)


def _scale_masks(rng, sense: int, frames: int, n: int, xs, ys):
    """Masks of a shape growing (sense 1) or shrinking (-1) about a point near the centre."""
    kind = rng.choice(["disk", "square", "triangle"])
    cx, cy = rng.uniform(0.4, 0.6, 2) * n
    small, large = rng.uniform(0.08, 0.11) * n, rng.uniform(0.32, 0.40) * n
    for t in range(frames):
        f = t / max(frames - 1, 1)
        r = small + (large - small) * (f if sense > 0 else 1.0 - f)
        yield _shape_mask(kind, xs, ys, cx, cy, r)


_MASKS = {"move": _move_masks, "turn": _turn_masks, "scale": _scale_masks}


def render_clip(motion: str, rng: np.random.Generator, frames: int = 10,
                size: int = 96) -> np.ndarray:
    """One clip of `motion` (a key of MOTIONS): uint8 RGB [frames, size, size, 3]."""
    if motion not in MOTIONS:
        raise InputError(f"unknown motion {motion!r}; expected one of {', '.join(MOTIONS)}")
    kind, directions = MOTIONS[motion]
    direction = directions[rng.integers(len(directions))]
    n = size * SUPERSAMPLE
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5      # [n, n] pixel centres
    background, colour = _colours(rng)
    texture = rng.normal(0.0, 0.03, (size, size, 1))          # a little fixed grain
    masks = _MASKS[kind](rng, direction, frames, n, xs, ys)
    clip = np.empty((frames, size, size, 3), np.uint8)
    dark = colour * 0.45
    for t, (inside, checks) in enumerate(masks):
        paint = np.where(inside[..., None], colour + checks[..., None] * (dark - colour),
                         background)                               # [n, n, 3]
        paint = paint.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
        image = paint + texture                                    # [size, size, 3]
        clip[t] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return clip


# ---- writing ---------------------------------------------------------------------------------

def write_video(path, frames: np.ndarray, fps: int = 5) -> Path:
    """uint8 RGB frames [T, H, W, 3] (H, W even) -> an H.264 mp4 at `path` (atomically)."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError(f"writing videos needs PyAV (FFmpeg), which is not "
                                     f"installed: {INSTALL_HINT}") from None
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise InputError(f"H.264 needs an even frame size, got {frames.shape[2]}x{frames.shape[1]}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "12", "preset": "fast", "threads": "1"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def make_motion_dataset(root, clips_per_class: int = 8, test_clips_per_class: int = 6,
                        frames: int = 10, size: int = 96, fps: int = 5, seed: int = 1,
                        classes: Sequence[str] = tuple(MOTIONS)) -> SyntheticSet:
    """Write `clips_per_class` training and `test_clips_per_class` test clips of every class
    under root/train/<class>/ and root/test/<class>/ (never the same clip in both)."""
    unknown = [c for c in classes if c not in MOTIONS]
    if unknown:
        raise InputError(f"unknown motions {unknown}; expected some of {', '.join(MOTIONS)}")
    if len(classes) < 2 or clips_per_class < 1 or test_clips_per_class < 0:
        raise InputError("a dataset needs at least 2 classes and 1 training clip per class")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", clips_per_class), ("test", test_clips_per_class)):
        for motion in classes:
            folder = root / split / motion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                clip = render_clip(motion, rng, frames, size)          # [T, size, size, 3]
                write_video(folder / f"{motion}_{i:03d}.mp4", clip, fps)
    return SyntheticSet(root, root / "train", root / "test", tuple(classes))


def main(argv=None) -> int:
    """``python -m minimovinet.apps.synthetic OUT_DIR``: write the set, print where."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m minimovinet.apps.synthetic",
                                     description="write a labelled synthetic motion video set")
    parser.add_argument("root", help="output folder (train/ and test/ are made inside)")
    parser.add_argument("--clips-per-class", type=int, default=8)
    parser.add_argument("--test-clips-per-class", type=int, default=6)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    made = make_motion_dataset(args.root, args.clips_per_class, args.test_clips_per_class,
                               args.frames, args.size, seed=args.seed)
    print(f"{len(made.classes)} classes ({', '.join(made.classes)}): "
          f"{args.clips_per_class} clips each in {made.train}, "
          f"{args.test_clips_per_class} in {made.test}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
