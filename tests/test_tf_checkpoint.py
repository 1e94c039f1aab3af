"""minimovinet.formats.tf_checkpoint against TensorFlow's own checkpoint reader.

The oracle is `tf.train.load_checkpoint(prefix)`: every tensor our reader returns must have
TF's dtype, shape and bytes (bit for bit; bfloat16 is compared through its bit pattern).
Checkpoints come from TF itself: a small one with every common dtype, a many-variable one (a
multi-block index), a sharded one, a partitioned v1 one, float8/int4 ones, and the official
MoViNet models (via tests/oracle.py) for a0..a5, base and stream.  A few synthetic bundles are
written with a tiny table writer in this file (big-endian data, snappy blocks, unknown dtypes);
TF reads those too, which checks the writer and therefore our understanding of the format.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from conftest import need_tensorflow  # noqa: E402

from minimovinet.errors import CheckpointError
from minimovinet.formats.tf_checkpoint import CheckpointReader, crc32c, mask_crc, read_checkpoint, unmask_crc


GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MOVINET_IDS = ["a0", "a1", "a2", "a3", "a4", "a5"]
SLOW_IDS = {"a3", "a4", "a5"}


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return need_tensorflow("TensorFlow writes the reference checkpoints")


# --------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------
def tf_read(tf, prefix):
    """{name: (tf dtype name, numpy array)} as TensorFlow reads them."""
    reader = tf.train.load_checkpoint(prefix)
    out = {}
    for name, dtype in reader.get_variable_to_dtype_map().items():
        value = reader.get_tensor(name)
        if dtype == tf.string:
            value = np.array(value, dtype=object) if isinstance(value, bytes) else value
        out[name] = (dtype.name, np.asarray(value))
    return out


def ours_like_tf(tf_dtype, value):
    """The array our reader must return for TF's (dtype, value): bfloat16 widened to float32."""
    if tf_dtype == "bfloat16":
        bits = np.asarray(value).view(np.uint16).astype(np.uint32) << np.uint32(16)
        return bits.view(np.float32)
    return np.asarray(value)


def assert_same_array(name, ours, expected):
    assert isinstance(ours, np.ndarray), name
    assert ours.dtype == expected.dtype, (name, ours.dtype, expected.dtype)
    assert ours.shape == expected.shape, (name, ours.shape, expected.shape)
    if expected.dtype == object:
        assert all(type(x) is bytes for x in ours.ravel()), name
        assert list(ours.ravel()) == list(expected.ravel()), name
    else:
        assert ours.tobytes() == expected.tobytes(), name          # bit-exact, NaN-safe


def assert_matches_tf(tf, reader, prefix, arrays=None):
    """Every tensor of `reader` (or `arrays`) equals TF's, and so do the names and dtypes."""
    expected = tf_read(tf, prefix)
    assert reader.names() == sorted(expected)
    variables = reader.variables()
    assert [v[0] for v in variables] == sorted(expected)
    arrays = reader.arrays() if arrays is None else arrays
    assert list(arrays) == sorted(expected)
    for name, dtype, shape in variables:
        tf_dtype, value = expected[name]
        want = ours_like_tf(tf_dtype, value)
        assert reader.tf_dtype(name) == tf_dtype, name
        assert dtype == want.dtype and tuple(shape) == want.shape, name
        assert_same_array(name, arrays[name], want)


def digest(arrays):
    """{name: [dtype, shape, sha256 of the contents]}: compares arrays across processes."""
    out = {}
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h = hashlib.sha256()
        if a.dtype == object:
            for x in a.ravel():
                h.update(struct.pack("<Q", len(x)) + x)
        else:
            h.update(np.ascontiguousarray(a).tobytes())
        out[name] = [a.dtype.str, list(a.shape), h.hexdigest()]
    return out


def copy_checkpoint(prefix, directory):
    """Copy the files of checkpoint `prefix` into `directory`; the new prefix."""
    os.makedirs(directory, exist_ok=True)
    src_dir, base = os.path.split(prefix)
    for fname in os.listdir(src_dir):
        if fname.startswith(base + "."):
            shutil.copy(os.path.join(src_dir, fname), directory)
    return os.path.join(directory, base)


def data_path(prefix, shard=0, num_shards=1):
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def flip_byte(path, pos, xor=0x40):
    with open(path, "r+b") as fh:
        fh.seek(pos)
        b = fh.read(1)
        fh.seek(pos)
        fh.write(bytes([b[0] ^ xor]))


def truncate(path, size):
    with open(path, "r+b") as fh:
        fh.truncate(size)


def raises_checkpoint_error(*fragments):
    """Context manager: a CheckpointError whose message holds every fragment."""
    class _Ctx:
        def __enter__(self):
            return self

        def __exit__(self, etype, exc, tb):
            assert etype is not None, f"no error raised (expected {fragments})"
            assert issubclass(etype, CheckpointError), f"{etype.__name__}: {exc}"
            for f in fragments:
                assert f in str(exc), f"{f!r} not in {str(exc)!r}"
            self.message = str(exc)
            return True
    return _Ctx()


# --------------------------------------------------------------------------------------------
# A minimal tensor-bundle writer (tests only): lets us build bundles TF never writes
# (big-endian, snappy-flagged, unknown dtypes) and check that TF accepts what we write.
# --------------------------------------------------------------------------------------------
def enc_varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_varint(field, value):
    return enc_varint(field << 3) + enc_varint(value) if value else b""


def pb_bytes(field, payload):
    return enc_varint(field << 3 | 2) + enc_varint(len(payload)) + payload


def pb_header(num_shards=1, endianness=0, producer=1):
    return (pb_varint(1, num_shards) + pb_varint(2, endianness)
            + pb_bytes(3, pb_varint(1, producer)))


def pb_entry(dtype, shape, shard, offset, size, crc):
    shape_pb = b"".join(pb_bytes(2, pb_varint(1, d)) for d in shape)
    return (pb_varint(1, dtype) + pb_bytes(2, shape_pb) + pb_varint(3, shard)
            + pb_varint(4, offset) + pb_varint(5, size) + enc_varint(6 << 3 | 5)
            + struct.pack("<I", crc))


def write_table(path, entries, block_size=4096, restart_interval=16, compression=0):
    """A LevelDB-format table of sorted (key, value) byte pairs."""
    out = bytearray()

    def emit_block(items):
        body, restarts, prev = bytearray(), [], b""
        for i, (k, v) in enumerate(items):
            shared = 0
            if i % restart_interval:
                while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                    shared += 1
            else:
                restarts.append(len(body))
            body += enc_varint(shared) + enc_varint(len(k) - shared) + enc_varint(len(v))
            body += k[shared:] + v
            prev = k
        restarts = restarts or [0]
        body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
        handle = enc_varint(len(out)) + enc_varint(len(body))
        kind = bytes([compression])
        out.extend(body + kind + struct.pack("<I", mask_crc(crc32c(bytes(body) + kind))))
        return handle

    index, pending, size = [], [], 0
    for k, v in entries:
        pending.append((k, v))
        size += len(k) + len(v) + 8
        if size >= block_size:
            index.append((pending[-1][0], emit_block(pending)))
            pending, size = [], 0
    if pending:
        index.append((pending[-1][0], emit_block(pending)))
    meta = emit_block([])
    idx = emit_block(index)
    footer = (meta + idx).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    out.extend(footer)
    with open(path, "wb") as fh:
        fh.write(out)


_TF_ENUM = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
            "string": 7, "complex64": 8, "int64": 9, "bool": 10, "bfloat16": 14, "uint16": 17,
            "complex128": 18, "float16": 19, "uint32": 22, "uint64": 23}


def string_tensor_bytes(values, byteorder="<"):
    lengths = [len(v) for v in values]
    packed = b"".join(struct.pack(byteorder + "I", n) for n in lengths)
    check = struct.pack(byteorder + "I", mask_crc(crc32c(packed)))
    data = b"".join(enc_varint(n) for n in lengths) + check + b"".join(values)
    crc = crc32c(packed + check + b"".join(values))
    return data, crc


def write_bundle(prefix, tensors, endianness=0, extra_entries=(), num_shards=1, **table_kw):
    """tensors: {name: (tf dtype name or enum, shape, numpy array or list of bytes)}."""
    byteorder = "<" if endianness == 0 else ">"
    data, entries = bytearray(), []
    for name in sorted(tensors):
        dtype, shape, value = tensors[name]
        enum = _TF_ENUM.get(dtype, dtype)
        if dtype == "string":
            values = list(np.asarray(value, dtype=object).ravel())
            raw, crc = string_tensor_bytes(values, byteorder)
        else:
            arr = np.ascontiguousarray(value)
            if arr.dtype.itemsize > 1 and arr.dtype.kind != "b":
                arr = arr.astype(arr.dtype.newbyteorder(byteorder))
            raw = arr.tobytes()
            crc = crc32c(raw)
        entry = pb_entry(enum, shape, 0, len(data), len(raw), mask_crc(crc))
        entries.append((name.encode(), entry))
        data += raw
    entries = sorted(entries + list(extra_entries))
    header = (b"", pb_header(num_shards, endianness))
    write_table(prefix + ".index", [header] + entries, **table_kw)
    with open(data_path(prefix, 0, num_shards), "wb") as fh:
        fh.write(data)


# --------------------------------------------------------------------------------------------
# Checkpoints written by TensorFlow.
# --------------------------------------------------------------------------------------------
def dtype_zoo(tf):
    """tf.Variables of many dtypes and shapes, with awkward values."""
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((3, 4, 5)).astype(np.float32)
    f32.flat[:4] = [np.nan, -np.inf, -0.0, np.float32(1e-45)]
    nan_payload = np.array([0x7FC00001, 0xFFA00000], np.uint32).view(np.float32)
    halves = np.array([np.nan, np.inf, -0.0, 65504, 6e-8, 1.5], np.float16)
    big = rng.standard_normal((600, 700)).astype(np.float32)           # 1.68 MB
    strings = [b"", b"a", bytes(range(256)), b"x" * 300, b"\x00\xff" * 5000]
    v = {
        "f32": tf.Variable(f32),
        "f32_nan_payload": tf.Variable(nan_payload),
        "f32_scalar": tf.Variable(np.float32(-2.5)),
        "f64": tf.Variable(rng.standard_normal((7,))),
        "f16": tf.Variable(halves),
        "bf16": tf.Variable(tf.constant([1.5, -2.0, np.nan, np.inf, -0.0, 3e38, 1e-40],
                                        dtype=tf.bfloat16)),
        "i8": tf.Variable(np.array([-128, 0, 127], np.int8)),
        "i16": tf.Variable(np.array([[-32768, 1], [2, 32767]], np.int16)),
        "i32": tf.Variable(np.array([-2 ** 31, 2 ** 31 - 1, 5], np.int32)),
        "i64": tf.Variable(np.array([-2 ** 63, 2 ** 63 - 1], np.int64)),
        "i64_scalar": tf.Variable(np.int64(-7)),
        "u8": tf.Variable(np.arange(256, dtype=np.uint8).reshape(16, 16)),
        "u16": tf.Variable(np.array([0, 65535], np.uint16)),
        "u32": tf.Variable(np.array([0, 2 ** 32 - 1], np.uint32)),
        "u64": tf.Variable(np.array([0, 2 ** 64 - 1], np.uint64)),
        "b": tf.Variable(np.array([True, False, True])),
        "b_scalar": tf.Variable(True),
        "c64": tf.Variable(np.array([1 + 2j, np.nan - 1j], np.complex64)),
        "c128": tf.Variable(np.array([[3 - 4j]], np.complex128)),
        "empty": tf.Variable(np.zeros((0, 3), np.float32)),
        "empty_i64": tf.Variable(np.zeros((2, 0, 4), np.int64)),
        "str_scalar": tf.Variable(b"hello checkpoint"),
        "str_vector": tf.Variable(strings),
        "str_matrix": tf.Variable([[b"ab", b""], [b"cde", b"f" * 200]]),
        "big": tf.Variable(big),
        "deep": tf.Variable(np.ones((1, 1, 2, 1, 3, 1), np.float32)),
    }
    return v


@pytest.fixture(scope="module")
def zoo_prefix(tf, tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    return tf.train.Checkpoint(**dtype_zoo(tf)).write(str(d / "ckpt-1"))


@pytest.fixture(scope="module")
def small_prefix(tf, tmp_path_factory):
    """A few small tensors (fast to corrupt byte by byte)."""
    d = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(1)
    ckpt = tf.train.Checkpoint(
        kernel=tf.Variable(rng.standard_normal((3, 3, 2, 4)).astype(np.float32)),
        bias=tf.Variable(rng.standard_normal((4,)).astype(np.float32)),
        step=tf.Variable(np.int64(12)),
        names=tf.Variable([b"alpha", b"", b"gamma"]),
        flags=tf.Variable(np.array([True, False])))
    return ckpt.write(str(d / "ckpt-1"))


@pytest.fixture(scope="module")
def many_prefix(tf, tmp_path_factory):
    """3000 variables with long names: an index of several 256 KB data blocks."""
    d = tmp_path_factory.mktemp("many")
    variables = {f"{i:05d}_" + "v" * 100: tf.Variable(np.float32(i)) for i in range(3000)}
    return tf.train.Checkpoint(**variables).write(str(d / "ckpt-1"))


# --------------------------------------------------------------------------------------------
# 1. Bit-exact against TF.
# --------------------------------------------------------------------------------------------
def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"\x00" * 32) == 0x8A9136AA                       # RFC 3720 B.4
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    for x in (0, 1, 0x12345678, 0xFFFFFFFF):
        assert unmask_crc(mask_crc(x)) == x


def _reference_crc32c(data):
    """Textbook table-driven CRC32C (table from the bit-by-bit definition)."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def test_crc32c_matches_reference():
    rng = np.random.default_rng(2)
    # every length around the 8-byte steps of the loop, and larger ones
    for n in list(range(0, 33)) + [63, 64, 65, 1000, 4097, 70001]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _reference_crc32c(data), n
    data = rng.integers(0, 256, (1 << 20) + 12345, dtype=np.uint8).tobytes()
    assert crc32c(data) == _reference_crc32c(data)
    # pieces of one buffer: as slices of an array, and as a running CRC continued piece by piece
    buf = np.frombuffer(data, np.uint8)
    cuts = [0, 1, 777, 70000, 70000, len(data) - 3000, len(data)]
    assert [crc32c(buf[a:b]) for a, b in zip(cuts, cuts[1:])] == \
        [_reference_crc32c(data[a:b]) for a, b in zip(cuts, cuts[1:])]
    running = 0
    for a, b in zip(cuts, cuts[1:]):
        running = crc32c(data[a:b], running)
    assert running == _reference_crc32c(data)
    # any bytes-like object or array: its bytes in memory order
    words = np.arange(1001, dtype=np.float32)
    assert crc32c(words) == crc32c(memoryview(bytearray(words.tobytes()))) == \
        _reference_crc32c(words.tobytes())
    grid = np.arange(60, dtype=np.uint8).reshape(6, 10)[:, 3:]        # not contiguous
    assert crc32c(grid) == _reference_crc32c(np.ascontiguousarray(grid).tobytes())
    assert crc32c(np.zeros(0, np.uint8)) == 0 and crc32c(bytearray()) == 0


def test_dtype_zoo_bit_exact(tf, zoo_prefix):
    with CheckpointReader(zoo_prefix) as reader:
        assert_matches_tf(tf, reader, zoo_prefix)
        # get() one by one (its own read + checksum path) agrees with arrays().
        arrays = {name: reader.get(name) for name in reader.names()}
        assert_matches_tf(tf, reader, zoo_prefix, arrays=arrays)
        assert reader.tf_dtype("bf16/.ATTRIBUTES/VARIABLE_VALUE") == "bfloat16"
        assert reader.get("f32_scalar/.ATTRIBUTES/VARIABLE_VALUE").shape == ()
        assert reader.get("str_scalar/.ATTRIBUTES/VARIABLE_VALUE")[()] == b"hello checkpoint"
        graph = reader.get(GRAPH_KEY)
        assert graph.shape == () and graph.dtype == object and isinstance(graph[()], bytes)


def test_bfloat16_as_raw_bits(tf, zoo_prefix):
    name = "bf16/.ATTRIBUTES/VARIABLE_VALUE"
    expected = tf.train.load_checkpoint(zoo_prefix).get_tensor(name).view(np.uint16)
    with CheckpointReader(zoo_prefix, bfloat16="uint16") as reader:
        got = reader.get(name)
        assert got.dtype == np.uint16 and np.array_equal(got, expected)
        assert dict((n, d) for n, d, _ in reader.variables())[name] == np.uint16
    with pytest.raises(ValueError):
        CheckpointReader(zoo_prefix, bfloat16="bf16")


def test_read_checkpoint_and_mapping_api(tf, small_prefix):
    arrays = read_checkpoint(small_prefix)
    with CheckpointReader(small_prefix) as reader:
        assert list(arrays) == reader.names() and len(reader) == len(arrays)
        assert "bias/.ATTRIBUTES/VARIABLE_VALUE" in reader
        assert np.array_equal(reader["bias/.ATTRIBUTES/VARIABLE_VALUE"],
                              arrays["bias/.ATTRIBUTES/VARIABLE_VALUE"])
        assert "1 shard" in repr(reader)


def test_multi_block_index(tf, many_prefix):
    assert os.path.getsize(many_prefix + ".index") > 2 * 262144 * 0.75   # > 1 data block
    with CheckpointReader(many_prefix) as reader:
        assert len(reader) == 3001
        assert_matches_tf(tf, reader, many_prefix)


def test_sharded_checkpoint(tf, tmp_path):
    # Equal 4000-byte variables, two per 8000-byte shard: no variable is split.
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=8000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    variables = {f"v{i}": tf.Variable(np.full((1000,), i, np.float32)) for i in range(6)}
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt-1"), options=options)
    with CheckpointReader(prefix) as reader:
        assert reader.num_shards > 2
        assert_matches_tf(tf, reader, prefix)
    os.remove(data_path(prefix, 1, reader.num_shards))
    with raises_checkpoint_error(f"shard 1 of {reader.num_shards} missing",
                                 data_path(prefix, 1, reader.num_shards)):
        CheckpointReader(prefix)


def test_sharding_policy_that_splits_a_variable(tf, tmp_path):
    """TF2 size-based sharding can store one variable as slices in two shards: reported."""
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=6000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    variables = {f"v{i}": tf.Variable(np.full((1000,), i, np.float32)) for i in range(3)}
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt-1"), options=options)
    expected = tf.train.load_checkpoint(prefix)
    with CheckpointReader(prefix) as reader:
        assert reader.names() == sorted(expected.get_variable_to_dtype_map())
        split = []
        for name in reader.names():
            try:
                got = reader.get(name)
            except CheckpointError as exc:
                assert repr(name) in str(exc) and "partitioned" in str(exc)
                split.append(name)
            else:
                want = np.asarray(expected.get_tensor(name), dtype=got.dtype)
                assert got.tobytes() == want.tobytes() or got.dtype == object
        assert split


# --------------------------------------------------------------------------------------------
# Synthetic bundles, checked against TF.
# --------------------------------------------------------------------------------------------
def synthetic_tensors():
    rng = np.random.default_rng(3)
    return {
        "a/f32": ("float32", (2, 3), rng.standard_normal((2, 3)).astype(np.float32)),
        "a/f64": ("float64", (4,), rng.standard_normal(4)),
        "b/i16": ("int16", (3,), np.array([-3, 0, 300], np.int16)),
        "b/i64": ("int64", (), np.array(-5, np.int64)),
        "c/u32": ("uint32", (2,), np.array([1, 2 ** 32 - 1], np.uint32)),
        "c/bool": ("bool", (2,), np.array([False, True])),
        "d/half": ("float16", (2,), np.array([1.5, -np.inf], np.float16)),
        "d/c64": ("complex64", (1,), np.array([1 - 2j], np.complex64)),
        "e/str": ("string", (3,), [b"one", b"", b"z" * 130]),
    } | {f"f/{i:04d}": ("int32", (1,), np.array([i], np.int32)) for i in range(200)}


@pytest.mark.parametrize("endianness", [0, 1], ids=["little", "big"])
def test_synthetic_bundle_read_by_tf_and_us(tf, tmp_path, endianness):
    """Our writer's bundle (small blocks, restarts) is read identically by TF and by us.

    The big-endian case exercises byte swapping, which TF's own reader also does.
    """
    prefix = str(tmp_path / "synthetic")
    write_bundle(prefix, synthetic_tensors(), endianness=endianness, block_size=512,
                 restart_interval=3)
    with CheckpointReader(prefix) as reader:
        assert_matches_tf(tf, reader, prefix)
        assert reader.get("b/i16")[2] == 300


def test_snappy_block_is_reported(tmp_path):
    prefix = str(tmp_path / "snappy")
    write_bundle(prefix, {"x": ("float32", (1,), np.ones(1, np.float32))}, compression=1)
    with raises_checkpoint_error("snappy", prefix + ".index"):
        CheckpointReader(prefix)


def test_unknown_dtype_enum(tmp_path):
    prefix = str(tmp_path / "unknown")
    data = b"\x01\x02\x03\x04"
    extra = [(b"odd", pb_entry(99, (4,), 0, 0, 4, mask_crc(crc32c(data))))]
    write_bundle(prefix, {}, extra_entries=extra)
    with open(data_path(prefix), "wb") as fh:
        fh.write(data)
    with CheckpointReader(prefix) as reader:
        assert reader.names() == ["odd"]
        assert reader.variables() == [("odd", None, (4,))]
        with raises_checkpoint_error("'odd'", "unknown dtype enum 99"):
            reader.get("odd")
        with raises_checkpoint_error("unknown dtype enum 99"):
            reader.arrays()


def test_float8_and_int4_are_unsupported_but_listed(tf, tmp_path):
    from tensorflow.python.framework import dtypes
    ckpt = tf.train.Checkpoint(f8=tf.Variable(tf.constant([1.0, 2.0], dtypes.float8_e4m3fn)),
                               i4=tf.Variable(tf.constant([1, -2], dtypes.int4)),
                               ok=tf.Variable(np.float32(3)))
    prefix = ckpt.write(str(tmp_path / "ckpt-1"))
    with CheckpointReader(prefix) as reader:
        assert reader.tf_dtype("f8/.ATTRIBUTES/VARIABLE_VALUE") == "float8_e4m3fn"
        assert reader.get("ok/.ATTRIBUTES/VARIABLE_VALUE") == np.float32(3)
        with raises_checkpoint_error("f8/.ATTRIBUTES/VARIABLE_VALUE", "float8_e4m3fn",
                                     "not support"):
            reader.get("f8/.ATTRIBUTES/VARIABLE_VALUE")
        with raises_checkpoint_error("int4", "not support"):
            reader.get("i4/.ATTRIBUTES/VARIABLE_VALUE")


def test_partitioned_variable_is_reported(tf, tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("w", shape=[10, 4],
                                  partitioner=tf.compat.v1.fixed_size_partitioner(2))
        tf.compat.v1.get_variable("u", shape=[3], initializer=tf.compat.v1.ones_initializer())
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model"))
    expected = tf.train.load_checkpoint(prefix)
    with CheckpointReader(tmp_path) as reader:          # directory with a 'checkpoint' file
        assert reader.names() == sorted(expected.get_variable_to_shape_map())
        assert np.array_equal(reader.get("u"), expected.get_tensor("u"))
        with raises_checkpoint_error("'w'", "partitioned", "not support"):
            reader.get("w")
        with raises_checkpoint_error("partitioned"):
            reader.arrays()


# --------------------------------------------------------------------------------------------
# 2. The official MoViNet models.
# --------------------------------------------------------------------------------------------
def movinet_params():
    for model_id in MOVINET_IDS:
        for variant in ("base", "stream"):
            marks = [pytest.mark.slow] if model_id in SLOW_IDS else []
            yield pytest.param(model_id, variant, marks=marks, id=f"{model_id}-{variant}")


def movinet_checkpoint(model_id, variant, directory):
    """(prefix, TF's arrays without the object graph) of the official model's checkpoint."""
    import oracle
    from minimovinet.config import ModelConfig
    cfg = ModelConfig.from_variant(model_id, variant)
    model = oracle.get_official(cfg, seed=0)
    return oracle.checkpoint_arrays(model, directory)


# The official a0..a5 base/stream checkpoints are checked bit for bit in test_official_a*.py
# (check_checkpoint_reader_bit_exact), next to the other tests of the same official models.


# --------------------------------------------------------------------------------------------
# 3. Prefix, index file, directory and tarball.
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def a0_stream(tf, tmp_path_factory):
    """A released-style directory movinet_a0_stream/{checkpoint, ckpt-1.index, ckpt-1.data-*}."""
    root = tmp_path_factory.mktemp("release")
    directory = root / "movinet_a0_stream"
    prefix, expected = movinet_checkpoint("a0", "stream", directory)
    (directory / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n'
                                          'all_model_checkpoint_paths: "ckpt-1"\n')
    tarball = root / "movinet_a0_stream.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(directory, arcname="movinet_a0_stream")
    return dict(prefix=prefix, directory=str(directory), tarball=str(tarball),
                digest=digest({**expected,
                               GRAPH_KEY: np.array(tf.train.load_checkpoint(prefix)
                                                   .get_tensor(GRAPH_KEY), dtype=object)}))


@pytest.mark.parametrize("form", ["prefix", "index", "data", "directory", "parent", "tarball",
                                  "tgz", "tar"])
def test_path_forms(a0_stream, tmp_path, form):
    if form == "prefix":
        path = a0_stream["prefix"]
    elif form == "index":
        path = a0_stream["prefix"] + ".index"
    elif form == "data":
        path = data_path(a0_stream["prefix"])
    elif form == "directory":
        path = a0_stream["directory"]
    elif form == "parent":      # a directory holding the released directory
        path = str(tmp_path / "unpacked")
        shutil.copytree(a0_stream["directory"], os.path.join(path, "movinet_a0_stream"))
    elif form == "tarball":
        path = a0_stream["tarball"]
    else:                       # other archive names / compressions
        path = str(tmp_path / ("ckpt.tgz" if form == "tgz" else "ckpt.tar"))
        with tarfile.open(path, "w:gz" if form == "tgz" else "w") as tar:
            tar.add(a0_stream["directory"], arcname="movinet_a0_stream")
    with CheckpointReader(path) as reader:
        assert digest(reader.arrays()) == a0_stream["digest"]
        tmpdir = reader._tmpdir
        if form in ("tarball", "tgz", "tar"):
            assert tmpdir and os.path.isdir(tmpdir)
            assert reader.prefix.startswith(tmpdir)
    if tmpdir:
        assert not os.path.exists(tmpdir)            # cleaned up on leaving the with block
    assert digest(read_checkpoint(path)) == a0_stream["digest"]


def test_checkpoint_file_selects_among_several(tf, small_prefix, tmp_path):
    d = tmp_path / "two"
    copy_checkpoint(small_prefix, d)
    for fname in os.listdir(d):
        shutil.copy(d / fname, d / fname.replace("ckpt-1", "ckpt-2"))
    with raises_checkpoint_error(str(d), "several checkpoints", "ckpt-1.index", "ckpt-2.index"):
        CheckpointReader(d)
    (d / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')
    with CheckpointReader(d) as reader:
        assert reader.prefix == str(d / "ckpt-2")
    (d / "checkpoint").write_text(f'model_checkpoint_path: "{d / "ckpt-1"}"\n')   # absolute
    with CheckpointReader(d) as reader:
        assert reader.prefix == str(d / "ckpt-1")
    (d / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    with raises_checkpoint_error("ckpt-9", "does not exist"):
        CheckpointReader(d)


def _make_tar(path, members):
    """members: list of (TarInfo kwargs, bytes or None)."""
    import io
    with tarfile.open(path, "w:gz") as tar:
        for kw, payload in members:
            info = tarfile.TarInfo(kw.pop("name"))
            for k, v in kw.items():
                setattr(info, k, v)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)


@pytest.mark.parametrize("bad_name,fragment", [("../evil.index", "outside the archive"),
                                               ("ok/../../evil.index", "outside the archive"),
                                               ("/tmp/evil.index", "absolute path")])
def test_tarball_refuses_unsafe_members(tmp_path, private_tempdir, bad_name, fragment):
    tarball = tmp_path / "evil.tar.gz"
    _make_tar(tarball, [(dict(name="movinet/ckpt-1.index"), b"x" * 10),
                        (dict(name=bad_name), b"payload")])
    with raises_checkpoint_error(str(tarball), fragment, bad_name):
        CheckpointReader(tarball)
    assert not (private_tempdir.parent / "evil.index").exists()
    assert os.listdir(private_tempdir) == []                          # temp dir removed


def test_tarball_skips_links_and_cleans_up_on_error(small_prefix, tmp_path, private_tempdir):
    tarball = tmp_path / "links.tar.gz"
    with open(small_prefix + ".index", "rb") as fh:
        index = fh.read()
    _make_tar(tarball, [(dict(name="m/ckpt-1.index"), index),
                        (dict(name="m/ckpt-1.data-00000-of-00001", type=tarfile.SYMTYPE,
                              linkname="/etc/passwd"), None)])
    with raises_checkpoint_error("shard 0 of 1 missing"):
        CheckpointReader(tarball)
    assert os.listdir(private_tempdir) == []


def test_tarball_without_checkpoint_and_broken_tarball(small_prefix, tmp_path):
    tarball = tmp_path / "empty.tar.gz"
    _make_tar(tarball, [(dict(name="readme.txt"), b"hello")])
    with raises_checkpoint_error(str(tarball), "no TensorFlow checkpoint"):
        CheckpointReader(tarball)
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as tar:
        tar.add(os.path.dirname(small_prefix), arcname="m")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    with raises_checkpoint_error(str(broken), "cannot unpack"):
        CheckpointReader(broken)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(3000))
    with raises_checkpoint_error(str(junk), "cannot unpack"):
        CheckpointReader(junk)


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """Make tempfile use an empty private directory (to check the reader cleans up)."""
    import tempfile
    d = tmp_path / "tempdir"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


# --------------------------------------------------------------------------------------------
# 4. Corruption and foreign inputs: always a CheckpointError with a useful message.
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_copy(small_prefix, tmp_path):
    return copy_checkpoint(small_prefix, tmp_path / "copy")


def entry_of(prefix, name):
    with CheckpointReader(prefix) as reader:
        return reader._entries[name]


def test_truncated_index(small_copy):
    size = os.path.getsize(small_copy + ".index")
    truncate(small_copy + ".index", size // 2)
    with raises_checkpoint_error(small_copy + ".index", "not a TensorFlow checkpoint index",
                                 "truncated"):
        CheckpointReader(small_copy)
    truncate(small_copy + ".index", 10)
    with raises_checkpoint_error(small_copy + ".index", "truncated"):
        CheckpointReader(small_copy)
    truncate(small_copy + ".index", 0)
    with raises_checkpoint_error(small_copy + ".index", "not a TensorFlow checkpoint index"):
        CheckpointReader(small_copy)


@pytest.mark.parametrize("keep", [0, 0.5, -1])
def test_truncated_data(small_copy, keep):
    path = data_path(small_copy)
    size = os.path.getsize(path)
    truncate(path, int(size * keep) if keep >= 0 else size - 1)
    with raises_checkpoint_error(path, "truncated"):
        CheckpointReader(small_copy)


def test_flipped_data_byte_names_the_variable(small_copy):
    for name in ["kernel/.ATTRIBUTES/VARIABLE_VALUE", "step/.ATTRIBUTES/VARIABLE_VALUE",
                 "names/.ATTRIBUTES/VARIABLE_VALUE"]:
        e = entry_of(small_copy, name)
        flip_byte(data_path(small_copy), e.offset + e.size - 1)
        with CheckpointReader(small_copy) as reader:
            with raises_checkpoint_error(data_path(small_copy), repr(name), "checksum"):
                reader.get(name)
            with raises_checkpoint_error(repr(name), "checksum"):
                reader.arrays()
        flip_byte(data_path(small_copy), e.offset + e.size - 1)       # restore
    read_checkpoint(small_copy)


def test_every_data_byte_is_checked(tf, small_copy):
    """Flip each byte of the data file in turn: always a CheckpointError naming a variable."""
    path = data_path(small_copy)
    with CheckpointReader(small_copy) as reader:
        spans = {n: (e.offset, e.offset + e.size) for n, e in reader._entries.items()}
    for pos in range(os.path.getsize(path)):
        owner = [n for n, (a, b) in spans.items() if a <= pos < b]
        flip_byte(path, pos)
        try:
            with raises_checkpoint_error(path, repr(owner[0]) if owner else ""):
                read_checkpoint(small_copy)
        finally:
            flip_byte(path, pos)


def test_flipped_index_bytes(tf, small_copy):
    """Flip each byte of the index: a CheckpointError, or (unused footer padding) the same data."""
    path = small_copy + ".index"
    reference = digest(read_checkpoint(small_copy))
    outcomes = {"error": 0, "same": 0}
    for pos in range(os.path.getsize(path)):
        flip_byte(path, pos)
        try:
            try:
                arrays = read_checkpoint(small_copy)
            except CheckpointError as exc:
                assert path in str(exc) or "checksum" in str(exc)
                outcomes["error"] += 1
            else:
                assert digest(arrays) == reference, pos
                outcomes["same"] += 1
        finally:
            flip_byte(path, pos)
    assert outcomes["error"] > outcomes["same"]
    # A flip inside the data block is caught by the block checksum.
    flip_byte(path, 20)
    with raises_checkpoint_error(path, "checksum mismatch in data block"):
        CheckpointReader(small_copy)
    flip_byte(path, 20)
    flip_byte(path, os.path.getsize(path) - 3)                          # the magic number
    with raises_checkpoint_error(path, "not a TensorFlow checkpoint index"):
        CheckpointReader(small_copy)


def test_every_index_truncation(small_copy):
    path = small_copy + ".index"
    with open(path, "rb") as fh:
        original = fh.read()
    for n in range(0, len(original)):
        with open(path, "wb") as fh:
            fh.write(original[:n])
        with raises_checkpoint_error(path):
            CheckpointReader(small_copy)


def test_missing_index_and_shard(small_copy):
    os.remove(data_path(small_copy))
    with raises_checkpoint_error(f"shard 0 of 1 missing: {data_path(small_copy)}"):
        CheckpointReader(small_copy)
    os.remove(small_copy + ".index")
    with raises_checkpoint_error(small_copy, "no such checkpoint", ".index does not exist"):
        CheckpointReader(small_copy)


def test_empty_and_foreign_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with raises_checkpoint_error(str(empty), "no TensorFlow checkpoint"):
        CheckpointReader(empty)
    junk = tmp_path / "weights.bin"
    junk.write_bytes(os.urandom(5000))
    with raises_checkpoint_error(str(junk), "not a TensorFlow checkpoint"):
        CheckpointReader(junk)
    junk_index = tmp_path / "junk.index"
    junk_index.write_bytes(os.urandom(5000))
    with raises_checkpoint_error(str(junk_index), "not a TensorFlow checkpoint index"):
        CheckpointReader(junk_index)
    text_index = tmp_path / "text.index"
    text_index.write_text("model_checkpoint_path: nothing here\n" * 10)
    with raises_checkpoint_error("not a TensorFlow checkpoint index"):
        CheckpointReader(text_index)
    # A directory with a foreign file only.
    only = tmp_path / "only"
    only.mkdir()
    (only / "notes.txt").write_text("hi")
    with raises_checkpoint_error(str(only), "no TensorFlow checkpoint"):
        CheckpointReader(only)
    with raises_checkpoint_error(str(tmp_path / "nope"), "no such checkpoint"):
        CheckpointReader(tmp_path / "nope")


def test_two_index_files(small_prefix, tmp_path):
    d = tmp_path / "two"
    copy_checkpoint(small_prefix, d)
    shutil.copy(d / "ckpt-1.index", d / "other.index")
    with raises_checkpoint_error(str(d), "several checkpoints", "ckpt-1.index", "other.index"):
        CheckpointReader(d)
    nested = tmp_path / "nested"
    copy_checkpoint(small_prefix, nested / "x")
    copy_checkpoint(small_prefix, nested / "y")
    with raises_checkpoint_error(str(nested), "several subdirectories"):
        CheckpointReader(nested)


def test_unknown_variable_name(small_prefix):
    with CheckpointReader(small_prefix) as reader:
        with raises_checkpoint_error("no variable named", "'bias/.ATTRIBUTES/VARIABLE_VALU'",
                                     "close matches: bias/.ATTRIBUTES/VARIABLE_VALUE"):
            reader.get("bias/.ATTRIBUTES/VARIABLE_VALU")
        with raises_checkpoint_error("no variable named"):
            reader.tf_dtype("missing")


def test_index_entry_with_wrong_size(tmp_path):
    prefix = str(tmp_path / "badsize")
    data = np.arange(4, dtype=np.float32).tobytes()
    entry = pb_entry(1, (5,), 0, 0, 16, mask_crc(crc32c(data)))
    write_bundle(prefix, {}, extra_entries=[(b"x", entry)])
    with open(data_path(prefix), "wb") as fh:
        fh.write(data)
    with CheckpointReader(prefix) as reader:
        with raises_checkpoint_error("'x'", "stores 16 bytes instead of 20"):
            reader.get("x")


def test_shard_id_out_of_range_and_newer_format(tmp_path):
    prefix = str(tmp_path / "badshard")
    write_bundle(prefix, {}, extra_entries=[(b"x", pb_entry(1, (1,), 3, 0, 4, 0))])
    with raises_checkpoint_error("'x'", "shard 3"):
        CheckpointReader(prefix)
    header = (pb_varint(1, 1) + pb_bytes(3, pb_varint(1, 5) + pb_varint(2, 7)))
    write_table(prefix + ".index", [(b"", header)])
    with raises_checkpoint_error("newer TensorFlow", "min_consumer 7"):
        CheckpointReader(prefix)


# --------------------------------------------------------------------------------------------
# 5. Without TensorFlow.
# --------------------------------------------------------------------------------------------
NO_TF_SCRIPT = textwrap.dedent('''
    import hashlib, json, struct, sys
    sys.modules["tensorflow"] = None          # "import tensorflow" now raises ImportError
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("tensorflow import should have failed")
    import numpy as np
    from minimovinet.formats.tf_checkpoint import read_checkpoint

    def digest(arrays):
        out = {}
        for name in sorted(arrays):
            a = np.asarray(arrays[name])
            h = hashlib.sha256()
            if a.dtype == object:
                for x in a.ravel():
                    h.update(struct.pack("<Q", len(x)) + x)
            else:
                h.update(np.ascontiguousarray(a).tobytes())
            out[name] = [a.dtype.str, list(a.shape), h.hexdigest()]
        return out

    result = {path: digest(read_checkpoint(path)) for path in sys.argv[1:]}
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras",
                    "keras") or m.startswith("google.protobuf"))
    print(json.dumps({"digests": result, "loaded": loaded}))
''')


def test_works_without_tensorflow(tf, zoo_prefix, a0_stream, tmp_path):
    script = tmp_path / "no_tf.py"
    script.write_text(NO_TF_SCRIPT)
    paths = [zoo_prefix, a0_stream["tarball"]]
    proc = subprocess.run([sys.executable, str(script)] + paths, capture_output=True, text=True,
                          timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == ["tensorflow"]        # only the None placeholder we planted
    expected_zoo = {name: ours_like_tf(dtype, value)
                    for name, (dtype, value) in tf_read(tf, zoo_prefix).items()}
    assert out["digests"][zoo_prefix] == digest(expected_zoo)
    assert out["digests"][a0_stream["tarball"]] == a0_stream["digest"]
