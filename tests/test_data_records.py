"""The TFRecord shard format: writing, reading back, and what happens to bad clips and records."""
import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from leaf_ssl.data.records import (
    ShardWriter,
    list_shards,
    parse_clip,
    read_clips,
    serialize_clip,
    write_shards,
)


def example_bytes(audio: bytes, sample_rate: int = 16000) -> bytes:
    """A hand-built record, independent of the writer under test."""
    feature = {
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[audio])),
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"hand-made"])),
        "sample_rate": tf.train.Feature(int64_list=tf.train.Int64List(value=[sample_rate])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_round_trip_keeps_ids_int16_samples_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    clips = [(f"clip-{i}", rng.integers(-32768, 32768, 100 + i, dtype=np.int16), list(range(i % 3))) for i in range(7)]
    writer = write_shards(clips, tmp_path, "train", num_shards=3)

    assert writer.written == 7 and not writer.skipped
    assert [os.path.basename(p) for p in list_shards(tmp_path)] == [
        f"train-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    read = {clip.id: clip for clip in read_clips(tmp_path)}
    assert sorted(read) == sorted(clip_id for clip_id, _, _ in clips)
    for clip_id, samples, labels in clips:
        np.testing.assert_array_equal(read[clip_id].waveform * 32768, samples.astype(np.float32))
        assert read[clip_id].waveform.dtype == np.float32
        assert read[clip_id].labels.tolist() == labels


def test_shards_are_filled_round_robin(tmp_path):
    write_shards([(f"c{i}", np.ones(4, np.float32) * 0.1, []) for i in range(10)], tmp_path, "p", 4)
    counts = [sum(1 for _ in tf.data.TFRecordDataset(path)) for path in list_shards(tmp_path)]
    assert counts == [3, 3, 2, 2]
    first_shard_ids = [clip.id for clip in read_clips(list_shards(tmp_path)[0])]
    assert first_shard_ids == ["c0", "c4", "c8"]


def test_float_samples_are_clipped_and_scaled():
    waveform = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 1 / 32768], np.float32)
    clip = parse_clip(serialize_clip("x", waveform))
    expected = np.array([0, 16384, -16384, 32767, -32768, 32767, -32768, 1]) / 32768
    np.testing.assert_array_equal(clip.waveform, expected.astype(np.float32))


def test_writer_rejects_and_counts_bad_clips(tmp_path):
    with ShardWriter(tmp_path, "p", 1) as writer:
        assert writer.write("good", np.zeros(10, np.float32))
        assert not writer.write("empty", np.zeros(0, np.float32))
        assert not writer.write("nan", np.array([0.1, np.nan], np.float32))
        assert not writer.write("inf", np.array([np.inf], np.float64))
        assert not writer.write("stereo", np.zeros((10, 2), np.float32))
        assert not writer.write("int32", np.zeros(10, np.int32))
    assert writer.written == 1 and sum(writer.skipped.values()) == 5
    assert [clip.id for clip in read_clips(tmp_path)] == ["good"]


def test_interrupted_writer_leaves_no_finished_looking_shard(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with ShardWriter(tmp_path, "p", 2) as writer:
            writer.write("a", np.zeros(3, np.float32))
            raise KeyboardInterrupt
    assert not list(tmp_path.glob("*.tfrecord"))
    with pytest.raises(FileNotFoundError):
        list_shards(tmp_path)


def test_read_clips_skips_and_counts_corrupt_records(tmp_path):
    path = str(tmp_path / "mixed-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(serialize_clip("first", np.full(4, 0.25, np.float32), [1]))
        writer.write(b"\x00\xffnot a protocol buffer\xff")
        writer.write(example_bytes(b"\x01\x02\x03"))  # odd byte count
        writer.write(example_bytes(b"\x01\x00\x02\x00", sample_rate=44100))
        writer.write(example_bytes(b""))
        writer.write(serialize_clip("last", np.full(2, -0.5, np.float32), [2]))
    skipped = collections.Counter()
    clips = list(read_clips(path, skipped))
    assert [clip.id for clip in clips] == ["first", "last"]
    assert sum(skipped.values()) == 4


def test_read_clips_counts_a_truncated_shard_and_keeps_its_intact_records(tmp_path):
    write_shards([(f"c{i}", np.full(1000, 0.1, np.float32), []) for i in range(3)], tmp_path, "p", 1)
    [path] = list_shards(tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(data[:-500])
    skipped = collections.Counter()
    assert [clip.id for clip in read_clips(path, skipped)] == ["c0", "c1"]
    assert sum(skipped.values()) == 1


def test_list_shards_names_the_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_shards(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        list_shards(tmp_path)  # a directory without shards
