"""Applications built on the model contract (`minimovinet.contract`).

    classify.py   `VideoClassifier`: frames or a video in, top-k and the timeline out
    many.py       `classify_many`: many videos on worker processes or a Dask cluster, the jobs
    inputs.py     the videos of a many-video run: files, folders (recursive), @lists
    results.py    one record per video; JSONL / CSV results appended line by line, resumed
    workers.py    the local engine: a spawn process pool, model once per worker, retry on death
    cluster.py    the Dask engine (`distributed`, the ``cluster`` extra): connect, run
    many_run.py   `minimovinet classify` over many videos: results files, resume, progress
    live.py       `LiveClassifier`: a camera or a file played as one, capture on a thread,
                  the newest frame classified at the model's rate, dropped frames counted
    overlay.py    the live overlay (top-k, fps, ms per inference), its video writer and window
    video.py      video files and cameras: decoding (PyAV), frame-rate resampling
    resize.py     cv2-exact bilinear resize, uint8 frames -> model input
    registry.py   released models, the download cache, `fetch`
    progress.py   progress bars on a terminal (tqdm, optional; plain lines without it)
    train.py      transfer learning: `train_classifier`, a new head on a frozen backbone
    dataset.py    labelled videos: class folders or a CSV, validation split, class matching
    features.py   backbone features of clips (sampling, views), streamed from zero states
    feature_cache.py  the on-disk cache of features (atomic entries, checked on read)
    head.py       the classifier head in NumPy: forward, cross-entropy, gradients
    adam.py       Adam / AdamW-style weight decay as Keras computes them
    fit.py        epochs, batches, validation, early stopping, one line per epoch
    evaluate.py   `evaluate`: accuracy, per-class scores, confusion matrix, accuracy by frame
    metrics.py    scikit-learn's classification metrics in NumPy
    report_plots.py  confusion matrix and accuracy-by-frame PNGs (matplotlib)
    synthetic.py  a labelled synthetic video set (moving and turning shapes), no download
    quantize.py   `quantize`: post-training int8 of a float model on calibration videos / frames

May import anything public in minimovinet; the command line (`minimovinet/cli.py`) is a thin
layer over these.
"""
