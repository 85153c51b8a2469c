"""Shards read without TensorFlow: the TFRecord framing and the Example wire format against TensorFlow's own
reader and protobuf's own parser, on the same bytes."""
import numpy as np
import pytest
import tensorflow as tf

from leaf_ssl.data import records, tfrecord_io
from leaf_ssl.data.example_proto import ExampleDecodeError, decode_example


def test_crc32c_has_the_castagnoli_check_value():
    assert tfrecord_io.crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    assert tfrecord_io.crc32c(b"") == 0


def test_records_read_back_as_tensorflow_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    payloads = [b"", b"x", rng.bytes(300), rng.bytes(70_000)]
    path = str(tmp_path / "mixed.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for payload in payloads:
            writer.write(payload)
    assert list(tfrecord_io.read_records(path)) == payloads
    assert [record.numpy() for record in tf.data.TFRecordDataset(path)] == payloads


@pytest.mark.parametrize("cut", [3, 13, 200], ids=["in-a-header", "in-data", "mid-record"])
def test_a_truncated_file_yields_what_precedes_the_damage_then_raises(tmp_path, cut):
    path = tmp_path / "cut.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"a" * 100)
        writer.write(b"b" * 300)
    data = path.read_bytes()
    path.write_bytes(data[:116 + cut])  # the first record's frame is 8 + 4 + 100 + 4 = 116 bytes
    reader = tfrecord_io.read_records(str(path))
    assert next(reader) == b"a" * 100
    with pytest.raises(tfrecord_io.DamagedShardError, match="record 1"):
        next(reader)


def test_a_garbled_length_is_caught_by_its_checksum(tmp_path):
    path = tmp_path / "garbled.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"payload")
    data = bytearray(path.read_bytes())
    data[0] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(tfrecord_io.DamagedShardError, match="checksum"):
        list(tfrecord_io.read_records(str(path)))


def _example(features):
    def feature(values):
        if all(isinstance(v, bytes) for v in values) and values:
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if all(isinstance(v, float) for v in values) and values:
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))


def test_examples_decode_as_protobuf_parses_them():
    rng = np.random.default_rng(1)
    cases = [
        {"audio": [rng.bytes(5000)], "id": ["clip é".encode()], "labels": [0, 3, 2**40, -7], "sample_rate": [16000]},
        {"audio": [b"ab", b"cd"], "labels": [], "floats": [0.5, -1.25, 3e8]},
        {"ünïcode name": [1]},
        {},
    ]
    for features in cases:
        example = _example(features)
        decoded = decode_example(example.SerializeToString())
        assert set(decoded) == set(example.features.feature)
        for name, values in decoded.items():
            reference = example.features.feature[name]
            kind = reference.WhichOneof("kind")
            expected = list(getattr(reference, kind).value) if kind else []
            if kind == "float_list":
                np.testing.assert_allclose(values, expected, rtol=1e-7)
            else:
                assert [bytes(v) if isinstance(v, memoryview) else v for v in values] == expected


def test_unpacked_int64_lists_decode_too():
    # Writers other than protobuf's may store repeated int64 unpacked: field 1, wire type 0, once per value.
    int64_list = b"\x08\x05\x08\x07"
    feature = b"\x1a" + bytes([len(int64_list)]) + int64_list
    entry = b"\x0a\x06labels" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    example = b"\x0a" + bytes([len(features)]) + features
    assert tf.train.Example.FromString(example).features.feature["labels"].int64_list.value == [5, 7]
    assert decode_example(example) == {"labels": [5, 7]}


@pytest.mark.parametrize("garbage", [b"\x0a\x05ab", b"\x0b", b"\xff" * 12, b"\x0a\x02\x08"],
                         ids=["overrun", "bad-wire-type", "overlong-varint", "truncated-varint"])
def test_malformed_bytes_raise_a_decode_error(garbage):
    with pytest.raises(ExampleDecodeError):
        decode_example(garbage)


def test_parse_clip_reads_what_serialize_clip_wrote_and_rejects_what_is_not_a_clip():
    waveform = np.sin(np.arange(800) / 9).astype(np.float32) * 0.5
    clip = records.parse_clip(records.serialize_clip("c", waveform, [2, 5]))
    assert clip.id == "c" and clip.labels.tolist() == [2, 5]
    np.testing.assert_array_equal(clip.waveform, records.to_int16(waveform) / np.float32(32768))
    for bad, reason in [(_example({"audio": [b"abc"]}), "int16"), (_example({"id": [b"x"]}), "audio"),
                        (_example({"audio": [b"ab"], "sample_rate": [8000]}), "sample_rate")]:
        with pytest.raises(records.CorruptRecordError, match=reason):
            records.parse_clip(bad.SerializeToString())
