"""The embedded default: what a fresh, offline install runs without any download.

    DEFAULT_MODEL   the official MoViNet-A0 stream Kinetics-600 int8 TFLite model
    LABELS          the 600 Kinetics-600 class names, one per line, in the models' output order
    SAMPLE_CLIP     a 4.4 s clip of ice carving (131 frames, 172x172, 29.6 fps)

All three are Apache-2.0 (see README.md in this folder for where each comes from), shipped byte
for byte; their sha256 are below and checked by the tests.  May import: nothing of minimovinet.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEFAULT_MODEL = HERE / "movinet_a0_stream_k600_int8.tflite"
LABELS = HERE / "kinetics600_label_map.txt"
SAMPLE_CLIP = HERE / "carving_ice_172.mp4"

SHA256 = {
    DEFAULT_MODEL.name: "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d1dce97fe3aa9c2ac",
    LABELS.name: "8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf",
    SAMPLE_CLIP.name: "279121e23c59724e280c5e1758c4a54a70ca94f9117d0e81cab45c7f8c1b5d01",
}


def kinetics600_labels():
    """The 600 Kinetics-600 class names (the embedded copy)."""
    names = [line.strip() for line in LABELS.read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n]
