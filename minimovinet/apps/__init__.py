"""Applications built on the model contract (`minimovinet.contract`).

    classify.py   `VideoClassifier`: frames or a video in, top-k and the timeline out
    live.py       `LiveClassifier`: a camera or a file played as one, capture on a thread,
                  the newest frame classified at the model's rate, dropped frames counted
    overlay.py    the live overlay (top-k, fps, ms per inference), its video writer and window
    video.py      video files and cameras: decoding (PyAV), frame-rate resampling
    resize.py     cv2-exact bilinear resize, uint8 frames -> model input
    registry.py   released models, the download cache, `fetch`
    progress.py   progress bars on a terminal (tqdm, optional; plain lines without it)

May import anything public in minimovinet; the command line (`minimovinet/cli.py`) is a thin
layer over these.
"""
