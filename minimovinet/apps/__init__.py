"""Applications built on the model contract (`minimovinet.contract`).

    classify.py   `VideoClassifier`: frames or a video in, top-k and the timeline out
    video.py      video files and cameras: decoding (PyAV), frame-rate resampling
    resize.py     cv2-exact bilinear resize, uint8 frames -> model input
    registry.py   released models, the download cache, `fetch`

May import anything public in minimovinet; the command line (`minimovinet/cli.py`) is a thin
layer over these.
"""
