"""The model registry, `minimovinet models` / `fetch`, the download cache and `mm.load(NAME)`.

No test touches the network: every test runs with socket connections refused (`no_network`),
downloads are served by a fake `urllib.request.urlopen` from local files (`server`), and
"cached" files are put into a temporary `$MINIMOVINET_HOME` by the tests themselves.  The
checkpoint is a real official one: the Model Garden A0 stream model with seeded random weights
(`oracle.get_official`, shared with the other tests), packed like the released tarball.
"""
import importlib.util
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import missing, need  # noqa: E402

import minimovinet as mm
from minimovinet import cli
from minimovinet.apps import registry
from minimovinet.apps.progress import Progress
from minimovinet.errors import CacheError, CheckpointError, DownloadError, ModelNotAvailableError, UnknownModelError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LABELS_FILE = SHARED / "labels" / "kinetics600_label_map.txt"
INT8_FILE = SHARED / "models" / "movinet_a0_stream_k600_int8.tflite"


# --------------------------------------------------------------------------------------------
# Fixtures: no network, a temporary cache, a fake server.
# --------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: {args[:2]}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("MINIMOVINET_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def labels_bytes():
    if not LABELS_FILE.exists():
        missing(f"../shared is absent ({LABELS_FILE}): no Kinetics-600 label file")
    return LABELS_FILE.read_bytes()


@pytest.fixture(scope="session")
def labels(labels_bytes):
    return [line.strip() for line in labels_bytes.decode().splitlines() if line.strip()]


class FakeResponse:
    """What `urlopen` returns: Content-Length, read(n); may stop with an exception midway."""

    def __init__(self, data, length=None, fail_after=None, exc=None, on_read=None):
        self._data, self._pos = data, 0
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self._fail_after, self._exc, self._on_read = fail_after, exc, on_read

    def read(self, n=-1):
        if self._on_read:
            self._on_read()
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise self._exc
        n = len(self._data) - self._pos if n < 0 else n
        if self._fail_after is not None:
            n = min(n, max(1, self._fail_after - self._pos))
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def downloadable_labels(monkeypatch):
    """The class-name file without its embedded copy, so that `fetch` downloads it: the
    download mechanics are tested on it (it has a known size and sha256)."""
    import dataclasses
    entry = dataclasses.replace(registry.REGISTRY["kinetics600-labels"], embedded=None)
    monkeypatch.setitem(registry.REGISTRY, "kinetics600-labels", entry)
    return entry


@pytest.fixture
def server(monkeypatch):
    """server.routes[url] = bytes | exception | callable() -> FakeResponse."""
    class Server:
        routes, requested = {}, []

    srv = Server()
    srv.routes, srv.requested = {}, []

    def urlopen(request, timeout=None):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        srv.requested.append(url)
        assert url in srv.routes, f"unexpected download {url}"
        route = srv.routes[url]
        if isinstance(route, BaseException):
            raise route
        return route() if callable(route) else FakeResponse(route)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return srv


class TTY(io.StringIO):
    def isatty(self):
        return True


def leftovers(directory):
    """Temporary or partial files in a cache directory (there must never be any)."""
    directory = Path(directory)
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir()
                  if p.name.endswith(".part") or ".h5" in p.name and p.name != "model.h5"
                  or p.name.startswith("."))


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------
# The official checkpoint, packed like the release (built once per session).
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def release(tmp_path_factory):
    """{tarball, directory, arrays}: movinet_a0_stream.tar.gz holding movinet_a0_stream/
    {checkpoint, ckpt-1.index, ckpt-1.data-00000-of-00001} of the official A0 stream model."""
    oracle = need("oracle", "the official checkpoints are built with TensorFlow")
    root = tmp_path_factory.mktemp("release")
    directory = root / "movinet_a0_stream"
    cfg = mm.ModelConfig.from_variant("a0", "stream")
    _, arrays = oracle.checkpoint_arrays(oracle.get_official(cfg, seed=0), directory)
    (directory / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n'
                                          'all_model_checkpoint_paths: "ckpt-1"\n')
    tarball = root / "movinet_a0_stream.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(directory, arcname="movinet_a0_stream")
    return dict(tarball=tarball, directory=directory, arrays=arrays)


def put(cache, name, data):
    """Put `data` into the cache as the download of registry entry `name` (as a user would)."""
    path = registry.download_path(name, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def variant_tarball(release, path, edit):
    """A copy of the release tarball whose checkpoint directory went through `edit(dir)`."""
    work = path.parent / (path.name + ".d")
    shutil.copytree(release["directory"], work / "movinet_a0_stream")
    edit(work / "movinet_a0_stream")
    with tarfile.open(path, "w") as tar:                 # uncompressed: fast, still a tarball
        tar.add(work / "movinet_a0_stream", arcname="movinet_a0_stream")
    return path.read_bytes()


def flip(path, pos):
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------
# The registry and `minimovinet models`.
# --------------------------------------------------------------------------------------------
def test_registry_entries():
    expected = {"a0": (172, 5), "a1": (172, 5), "a2": (224, 5), "a3": (256, 12),
                "a4": (290, 8), "a5": (320, 12)}
    for mid, (size, fps) in expected.items():
        for variant in ("base", "stream"):
            e = registry.get(f"{mid}-{variant}")
            assert e.kind == "checkpoint" and (e.model_id, e.variant) == (mid, variant)
            assert e.url == ("https://storage.googleapis.com/tf_model_garden/vision/movinet/"
                             f"movinet_{mid}_{variant}.tar.gz")
            assert (e.input_size, e.fps, e.frames) == (size, fps, 10 * fps)
    for precision in ("int8", "float16"):
        for mid in ("a0", "a1", "a2"):
            e = registry.get(f"{mid}-stream-{precision}")
            assert e.kind == "tflite" and e.filename.endswith(".tflite")
            assert f"movinet/{mid}/stream/kinetics-600/classification/tflite/{precision}/" in e.url
        assert f"a3-stream-{precision}" not in registry.REGISTRY
    assert registry.get("a0-stream-int8").size_bytes == 3_276_048
    assert registry.get("a0-stream-int8").sha256.startswith("6125b36e")
    assert registry.get("kinetics600-labels").url.endswith(
        "official/projects/movinet/files/kinetics_600_labels.txt")
    assert len(registry.REGISTRY) == 12 + 12 + 6 + 6 + 1   # + SavedModels, float32 TFLite
    # spellings
    assert registry.get("A0_Stream").name == "a0-stream"
    assert registry.get("movinet_a2_base.tar.gz").name == "a2-base"
    with pytest.raises(UnknownModelError, match="did you mean a0-stream"):
        registry.get("a0-strem")


def test_registry_matches_the_shared_files(labels_bytes):
    for name, path in (("kinetics600-labels", LABELS_FILE), ("a0-stream-int8", INT8_FILE)):
        if not path.exists():
            missing(f"{path} is absent")
        registry._check_size_and_hash(registry.get(name), path, str(path))


def test_models_command_lists_everything(capsys, cache):
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and err == ""
    lines = out.splitlines()
    for e in registry.REGISTRY.values():
        line = next(l for l in lines if l.startswith(e.name + " "))
        assert e.url in line
        if e.input_size:
            assert f"{e.input_size}x{e.input_size}" in line and f"{e.fps} fps" in line
    assert str(cache) in out


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIMOVINET_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.cache_dir() == tmp_path / "xdg" / "minimovinet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert registry.cache_dir() == Path.home() / ".cache" / "minimovinet"
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "home"))
    assert registry.cache_dir() == tmp_path / "home"
    assert registry.model_path("a0-stream") == tmp_path / "home" / "a0-stream" / "model.h5"
    assert registry.download_path("a0-stream") == (tmp_path / "home" / "a0-stream" /
                                                   "movinet_a0_stream.tar.gz")


# --------------------------------------------------------------------------------------------
# The download flow (label file and TFLite file: small and exactly verifiable).
# --------------------------------------------------------------------------------------------
def test_fetch_downloads_to_part_then_renames(cache, server, downloadable_labels, labels_bytes):
    entry = registry.get("kinetics600-labels")
    final = registry.download_path(entry)
    seen = []

    def watch():              # during the download: only a .part file, never the final name
        seen.append((final.exists(), leftovers(final.parent)))

    server.routes[entry.url] = lambda: FakeResponse(labels_bytes, on_read=watch)
    bar = TTY()
    assert registry.fetch("kinetics600-labels", progress=bar) == final
    assert final.read_bytes() == labels_bytes and leftovers(final.parent) == []
    assert seen and all(not exists and len(parts) == 1 and parts[0].endswith(".part")
                        for exists, parts in seen)
    if importlib.util.find_spec("tqdm"):
        assert "kinetics600-labels [" in bar.getvalue() and "100%" in bar.getvalue()
    else:
        assert bar.getvalue().endswith("kinetics600-labels: done, 9.2 kB\n")
    # cached: no second download; no progress bar when the stream is not a terminal
    server.routes.clear()
    registry.fetch("kinetics600-labels", progress=None)
    quiet = io.StringIO()
    with Progress("x", 10, unit="bytes", stream=quiet) as unseen:
        unseen.update(10)
    assert unseen.enabled is False and quiet.getvalue() == ""
    assert registry.class_names() == [l.strip() for l in labels_bytes.decode().splitlines()]


@pytest.mark.parametrize("fault", ["corrupted", "truncated", "html", "short-read"])
def test_failed_verification_leaves_nothing(cache, server, downloadable_labels, labels_bytes, fault):
    entry = registry.get("kinetics600-labels")
    data = {"corrupted": labels_bytes.replace(b"zumba", b"rumba"),
            "truncated": labels_bytes[:5000],
            "html": b"<html><body>Not found</body></html>",
            "short-read": labels_bytes}[fault]
    for url in entry.urls:
        server.routes[url] = ((lambda: FakeResponse(data, length=len(data) + 100))
                              if fault == "short-read" else data)
    with pytest.raises(DownloadError) as info:
        registry.fetch("kinetics600-labels", progress=False)
    msg = str(info.value)
    assert {"corrupted": "sha256", "truncated": "bytes, expected 9,209", "html": "bytes",
            "short-read": "truncated: received 9,209 of 9,309 bytes"}[fault] in msg
    assert entry.url in msg and "nothing was kept" in msg
    assert str(registry.download_path(entry)) in msg          # where to put it by hand
    assert not registry.download_path(entry).exists()
    assert leftovers(registry.download_path(entry).parent) == []


def test_interrupted_download_leaves_nothing(cache, server, downloadable_labels, labels_bytes, capsys):
    entry = registry.get("kinetics600-labels")
    server.routes[entry.url] = lambda: FakeResponse(labels_bytes, fail_after=4096,
                                                    exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        registry.fetch("kinetics600-labels", progress=TTY())
    assert not registry.download_path(entry).exists()
    assert leftovers(registry.download_path(entry).parent) == []
    # the command line says so and exits 130
    code, out, err = run_cli(capsys, "fetch", "kinetics600-labels")
    assert code == 130 and "interrupted" in err and "partial download was removed" in err
    assert "Traceback" not in err and not registry.download_path(entry).exists()


def test_network_errors_and_mirrors(cache, server, downloadable_labels, labels_bytes):
    entry = registry.get("kinetics600-labels")
    server.routes[entry.url] = urllib.error.URLError("Temporary failure in name resolution")
    server.routes[entry.mirrors[0]] = lambda: FakeResponse(
        labels_bytes, fail_after=100, exc=ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(DownloadError) as info:
        registry.fetch("kinetics600-labels", progress=False)
    assert "name resolution" in str(info.value) and "Connection reset by peer" in str(info.value)
    assert not registry.download_path(entry).exists()
    # the primary fails (HTTP 404), the mirror serves the file
    server.routes[entry.url] = urllib.error.HTTPError(entry.url, 404, "Not Found", {}, None)
    server.routes[entry.mirrors[0]] = labels_bytes
    registry.fetch("kinetics600-labels", progress=False)
    assert registry.download_path(entry).read_bytes() == labels_bytes
    assert server.requested[-2:] == [entry.url, entry.mirrors[0]]


def test_fetch_tflite(cache, server, labels_bytes, tmp_path):
    if not INT8_FILE.exists():
        missing(f"{INT8_FILE} is absent")
    data = INT8_FILE.read_bytes()
    entry = registry.get("a0-stream-int8")
    labels_entry = registry.get("kinetics600-labels")
    server.routes[labels_entry.url] = labels_bytes
    # a broken file from TF Hub, then Kaggle's tar.gz packaging of the right one
    server.routes[entry.url] = data[:-10]
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        info = tarfile.TarInfo("1.tflite")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    server.routes[entry.mirrors[0]] = bundle.read_bytes()
    path = registry.fetch("a0-stream-int8", progress=False)
    assert path == registry.model_path("a0-stream-int8") and path.read_bytes() == data
    assert leftovers(path.parent) == []
    # a file of another model (wrong input size) is refused, and nothing is kept
    a2 = registry.get("a2-stream-int8")
    server.routes[a2.url] = data
    server.routes[a2.mirrors[0]] = urllib.error.HTTPError(a2.mirrors[0], 404, "Not Found", {},
                                                          None)
    with pytest.raises(DownloadError, match="no 224x224x3 image input"):
        registry.fetch("a2-stream-int8", progress=False, force=True)
    assert not registry.download_path("a2-stream-int8").exists()


# --------------------------------------------------------------------------------------------
# Checkpoints: fetch converts, load reads the cache.
# --------------------------------------------------------------------------------------------
def test_fetch_checkpoint_converts_with_class_names(cache, server, release, labels_bytes,
                                                    labels, capsys):
    from minimovinet.formats.h5 import read
    entry = registry.get("a0-stream")
    server.routes[entry.url] = release["tarball"].read_bytes()
    server.routes[registry.get("kinetics600-labels").url] = labels_bytes
    code, out, err = run_cli(capsys, "fetch", "a0-stream", "--no-progress")
    assert code == 0, err
    h5 = registry.model_path("a0-stream")
    assert out.strip() == f"a0-stream: {h5}"
    cfg, _, names, attrs = read(h5)
    assert (cfg.model_id, cfg.variant, cfg.num_classes) == ("a0", "stream", 600)
    assert names == labels and entry.url in attrs["source"]
    assert registry.download_path("a0-stream").read_bytes() == release["tarball"].read_bytes()
    assert leftovers(h5.parent) == [] and registry.status("a0-stream") == "converted"
    # cached: fetching again downloads nothing
    server.routes.clear()
    assert registry.fetch("a0-stream", progress=False) == h5


def test_load_by_name_uses_the_cache(cache, release, labels_bytes, labels, tmp_path,
                                     monkeypatch):
    from minimovinet.formats.official_checkpoint import convert_arrays
    put(cache, "a0-stream", release["tarball"].read_bytes())    # put there by hand
    put(cache, "kinetics600-labels", labels_bytes)
    model = mm.load("a0-stream")                                # converts, then reads the h5
    assert registry.model_path("a0-stream").is_file()
    assert model.class_names == labels and model.class_names[-1] == "zumba"
    direct_h5 = tmp_path / "direct.h5"
    convert_arrays(release["arrays"], direct_h5, model_id="a0", variant="stream")
    direct = mm.load(direct_h5)
    clip = np.random.default_rng(3).random((1, 3, 32, 32, 3), dtype=np.float32)
    np.testing.assert_array_equal(model(clip), direct(clip))
    again = mm.load("A0_Stream")                                # the h5 this time
    np.testing.assert_array_equal(again(clip), direct(clip))
    # an existing path wins over a registry name
    monkeypatch.chdir(tmp_path)
    shutil.copy(direct_h5, tmp_path / "a0-stream")
    from minimovinet import data
    assert mm.load("a0-stream").class_names == data.kinetics600_labels()   # 600 classes


def test_offline_load_says_what_to_download_where(cache, capsys, labels_bytes):
    """Only the model file can be missing: the class names are embedded, and so is the
    a0-stream-int8 model (loaded from the package when the cache has none)."""
    entry, labels_entry = registry.get("a0-stream"), registry.get("kinetics600-labels")
    with pytest.raises(ModelNotAvailableError) as info:
        mm.load("a0-stream")
    msg = str(info.value)
    for fragment in (entry.url, str(cache / "a0-stream" / "movinet_a0_stream.tar.gz"),
                     "minimovinet fetch a0-stream"):
        assert fragment in msg
    assert labels_entry.url not in msg
    with pytest.raises(ModelNotAvailableError) as info:
        mm.load("a1-stream-int8")
    assert registry.get("a1-stream-int8").url in str(info.value)
    assert labels_entry.url not in str(info.value)
    assert mm.load("a0-stream-int8").class_names[0] == "abseiling"      # the embedded default
    code, out, err = run_cli(capsys, "describe", "a0-stream")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and entry.url in err
    with pytest.raises(UnknownModelError, match="a0-stream"):
        mm.load("a0-steam")
    code, out, err = run_cli(capsys, "fetch", "a9-stream")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "not a model file" in err


def _break(kind):
    def edit(d):
        index, data = d / "ckpt-1.index", d / "ckpt-1.data-00000-of-00001"
        if kind == "corrupted-index":
            flip(index, index.stat().st_size // 3)
        elif kind == "truncated-index":
            index.write_bytes(index.read_bytes()[:-30])
        elif kind == "corrupted-data":
            flip(data, data.stat().st_size // 2)
        elif kind == "truncated-data":
            data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        elif kind == "missing-shard":
            data.unlink()
        elif kind == "empty-directory":
            for f in d.iterdir():
                f.unlink()
    return edit


BROKEN = {"corrupted-index": "", "truncated-index": "", "corrupted-data": "checksum",
          "truncated-data": "truncated", "missing-shard": "data shard 0 of 1 missing",
          "empty-directory": "no TensorFlow checkpoint", "truncated-tarball": "",
          "not-a-tarball": ""}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_checkpoints_in_cache(cache, release, labels_bytes, tmp_path, kind, capsys):
    if kind == "truncated-tarball":
        data = release["tarball"].read_bytes()
        data = data[: len(data) // 2]
    elif kind == "not-a-tarball":
        data = b"<html>rate limited</html>" * 40
    else:
        data = variant_tarball(release, tmp_path / f"{kind}.tar", _break(kind))
    tarball = put(cache, "a0-stream", data)
    put(cache, "kinetics600-labels", labels_bytes)
    with pytest.raises(CheckpointError) as info:
        mm.load("a0-stream")
    msg = str(info.value)
    assert str(tarball) in msg and BROKEN[kind] in msg and "--force" in msg
    assert not registry.model_path("a0-stream").exists() and leftovers(tarball.parent) == []
    code, out, err = run_cli(capsys, "fetch", "a0-stream")     # same through the CLI
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not registry.model_path("a0-stream").exists()


def test_broken_download_is_not_kept(cache, server, release, labels_bytes, tmp_path):
    entry = registry.get("a0-stream")
    server.routes[registry.get("kinetics600-labels").url] = labels_bytes
    server.routes[entry.url] = variant_tarball(release, tmp_path / "bad.tar",
                                               _break("corrupted-data"))
    with pytest.raises(DownloadError, match="verification failed.*checksum"):
        registry.fetch("a0-stream", progress=False)
    directory = registry.model_path("a0-stream").parent
    assert sorted(p.name for p in directory.iterdir()) == []


def test_checkpoint_of_another_model(cache, release, labels_bytes):
    # the A0 stream release saved under the A1 stream name, and under the A0 base name
    put(cache, "kinetics600-labels", labels_bytes)
    put(cache, "a1-stream", release["tarball"].read_bytes())
    with pytest.raises(CheckpointError, match="holds a MoViNet a0 stream checkpoint .*not the "
                                              "a1 stream model of registry entry a1-stream"):
        mm.load("a1-stream")
    put(cache, "a0-base", release["tarball"].read_bytes())
    with pytest.raises(CheckpointError, match="a0 stream checkpoint.*not the a0 base model"):
        registry.fetch("a0-base", progress=False)
    for name in ("a1-stream", "a0-base"):
        assert not registry.model_path(name).exists()
        assert leftovers(registry.model_path(name).parent) == []


def test_unusable_cache_directory(tmp_path, monkeypatch, capsys, server):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MINIMOVINET_HOME", str(blocker / "cache"))
    with pytest.raises(CacheError, match="cannot create the cache directory"):
        registry.fetch("kinetics600-labels", progress=False)
    code, out, err = run_cli(capsys, "fetch", "a0-stream")
    assert code == 1 and "MINIMOVINET_HOME" in err and len(err.strip().splitlines()) == 1
    assert server.requested == []
    if os.geteuid() == 0:
        return                        # root writes anywhere: the permission case cannot happen
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        monkeypatch.setenv("MINIMOVINET_HOME", str(readonly))
        with pytest.raises(CacheError, match="not writable|cannot create"):
            registry.fetch("kinetics600-labels", progress=False)
    finally:
        readonly.chmod(0o700)


# --------------------------------------------------------------------------------------------
# Without TensorFlow.
# --------------------------------------------------------------------------------------------
def test_fetch_and_load_without_tensorflow(release, labels_bytes, tmp_path):
    labels_path = tmp_path / "labels.txt"
    labels_path.write_bytes(labels_bytes)
    script = tmp_path / "no_tf.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        for name in ("tensorflow", "tf_keras", "keras", "official", "ai_edge_litert",
                     "tflite_runtime"):
            sys.modules[name] = None          # any import of these now raises ImportError
        import io, socket, urllib.request
        import numpy as np
        def refuse(*a, **k):
            raise AssertionError("network")
        socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
        files = {{{registry.get("a0-stream").url!r}: {str(release["tarball"])!r},
                 {registry.get("kinetics600-labels").url!r}: {str(labels_path)!r}}}
        class Response(io.BytesIO):
            def __init__(self, data):
                super().__init__(data)
                self.headers = {{"Content-Length": str(len(data))}}
        urllib.request.urlopen = lambda req, timeout=None: Response(
            open(files[req.full_url], "rb").read())
        import minimovinet as mm
        from minimovinet.apps import registry
        registry.fetch("a0-stream", progress=False)
        model = mm.load("a0-stream")
        x = np.random.default_rng(0).random((1, 2, 24, 24, 3), dtype=np.float32)
        logits, _ = model(x, model.init_states(1, 24, 24))
        assert sys.modules.get("tensorflow") is None
        print("ok", logits.shape, model.class_names[0])
    """))
    env = dict(os.environ, MINIMOVINET_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok (1, 600) abseiling" in done.stdout


def test_load_tflite_by_name(cache, labels_bytes, labels):
    """A TFLite entry resolves to the cached .tflite file, which `mm.load` reads as such (or
    says clearly that it cannot yet); the class names come from the cached label file."""
    if not INT8_FILE.exists():
        missing(f"{INT8_FILE} is absent")
    put(cache, "kinetics600-labels", labels_bytes)
    # a corrupted cached file is refused before loading, with the way out
    put(cache, "a0-stream-int8", INT8_FILE.read_bytes()[:-1])
    with pytest.raises(DownloadError, match="expected 3,276,048.*--force"):
        mm.load("a0-stream-int8")
    put(cache, "a0-stream-int8", INT8_FILE.read_bytes())
    assert registry.resolve("a0-stream-int8") == registry.download_path("a0-stream-int8")
    try:
        model = mm.load("a0-stream-int8")
    except mm.MinimovinetError as e:
        assert "not supported by this version" in str(e) and "a0-stream-int8" in str(e)
        return
    assert model.class_names == labels
