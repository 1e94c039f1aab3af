"""Applications built on the model contract (`minimovinet.contract`).

    classify.py   `VideoClassifier`: frames or a video in, top-k and the timeline out
    video.py      video decoding (PyAV), frame-rate resampling, cv2-exact bilinear resize
    registry.py   released models, the download cache, `fetch`

May import anything public in minimovinet; the command line (`minimovinet/cli.py`) is a thin
layer over these.
"""
