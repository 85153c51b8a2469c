"""The pretraining streams of both readers (tf.data, and the shards decoded into memory): crop geometry,
determinism, resumption, sharding, bad records.

Most tests use "ramp" clips: clip c holds the int16 values base_c, base_c + 1, ... (disjoint
ranges, all >= 1), so with normalisation and noise switched off the first value of a crop says
which clip and which sample it starts at, and zero padding is recognisable.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from leaf_ssl.data.streams import pretraining_stream
from leaf_ssl.data.shards import count_valid_records, local_shards
from leaf_ssl.data.records import (COUNT_SUFFIX, list_shards, read_record_count, serialize_clip, write_record_count,
                                   write_shards)

CROP = 64


def write_ramp_clips(directory, lengths, num_shards=4, prefix="ramp"):
    """Writes ramp clips; returns {clip index: (base value, length)}."""
    clips, layout, base = [], {}, 1
    for index, length in enumerate(lengths):
        clips.append((f"clip-{index}", np.arange(base, base + length, dtype=np.int16), []))
        layout[index] = (base, length)
        base += length
    assert base < 32768
    write_shards(clips, directory, prefix, num_shards)
    return layout


def locate(crop, layout):
    """(clip index, start sample) of a raw crop; asserts that it is a contiguous, padded piece of one clip."""
    values = np.rint(crop * 32768).astype(np.int64)
    first = values[0]
    [index] = [i for i, (base, length) in layout.items() if base <= first < base + length]
    base, length = layout[index]
    start = first - base
    inside = min(CROP, length - start)
    np.testing.assert_array_equal(values[:inside], np.arange(first, first + inside))
    np.testing.assert_array_equal(values[inside:], 0)
    assert start + CROP <= length or start == 0, "a crop must lie inside its clip (short clips start at 0)"
    return index, start


@pytest.fixture(params=["tf_data", "in_memory"])
def reader(request):
    return request.param


def raw_batches(directory, num_batches, reader, **kwargs):
    settings = dict(per_process_batch=4, seed=7, crop_samples=CROP, process_index=0, process_count=1,
                    noise_std=0.0, normalize=False, shuffle_buffer=16)
    settings.update(kwargs)
    batches = pretraining_stream(directory, reader=reader, **settings)
    return [next(batches) for _ in range(num_batches)], batches


LENGTHS = [CROP + 3, 30, CROP, 200, 150, 90, 500, 10, 300, 77, 128, 64 * 5, 1000, 45, 700, 99] * 2


@pytest.fixture(scope="module")
def ramp_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ramps")
    return directory, write_ramp_clips(directory, LENGTHS)


def test_crops_lie_inside_their_clip_and_pairs_share_a_clip(ramp_dir, reader):
    directory, layout = ramp_dir
    batches, stream = raw_batches(directory, 40, reader)  # five epochs of 32 clips
    starts = {index: set() for index in layout}
    differing_pairs = 0
    for batch in batches:
        assert batch["anchor"].shape == (4, CROP) and batch["anchor"].dtype == np.float32
        for anchor, positive in zip(batch["anchor"], batch["positive"]):
            anchor_clip, anchor_start = locate(anchor, layout)
            positive_clip, positive_start = locate(positive, layout)
            assert anchor_clip == positive_clip
            starts[anchor_clip].update({anchor_start, positive_start})
            differing_pairs += anchor_start != positive_start
    assert stream.records_per_epoch == len(LENGTHS)
    assert differing_pairs > 0.7 * 40 * 4
    # Clips 0 and 16 (CROP + 3 samples) have exactly 4 possible starts: all used, both ends included.
    assert starts[0] | starts[16] == {0, 1, 2, 3}
    assert starts[1] == {0}  # shorter than a crop: padded, never shifted


def test_every_clip_appears_once_per_epoch(ramp_dir, reader):
    directory, layout = ramp_dir
    batches, _ = raw_batches(directory, 16, reader)  # two epochs of 32 clips
    clips = [locate(anchor, layout)[0] for batch in batches for anchor in batch["anchor"]]
    assert sorted(clips[:32]) == sorted(clips[32:]) == list(range(32))
    assert clips[:32] != clips[32:], "each epoch is reshuffled"


def test_same_seed_same_batches_and_other_seed_other_batches(ramp_dir, reader):
    directory, _ = ramp_dir
    first, _ = raw_batches(directory, 6, reader, normalize=True, noise_std=0.001)
    again, _ = raw_batches(directory, 6, reader, normalize=True, noise_std=0.001)
    other, _ = raw_batches(directory, 6, reader, normalize=True, noise_std=0.001, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["anchor"], b["anchor"])
        np.testing.assert_array_equal(a["positive"], b["positive"])
    assert not all(np.array_equal(a["anchor"], c["anchor"]) for a, c in zip(first, other))


def batch_digest(directory, num_batches, reader):
    batches, _ = raw_batches(directory, num_batches, reader, normalize=True, noise_std=0.001)
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch["anchor"].tobytes() + batch["positive"].tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_batches_repeat_in_a_new_process(ramp_dir, reader):
    directory, _ = ramp_dir
    script = (
        "import sys; sys.path[:0] = sys.argv[1:2]; from test_data_pipeline import batch_digest; "
        f"print(batch_digest({str(directory)!r}, 5, {reader!r}))"
    )
    tests_dir = str(Path(__file__).parent)
    result = subprocess.run([sys.executable, "-c", script, tests_dir], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == batch_digest(directory, 5, reader)


@pytest.mark.parametrize("start_batch", [3, 11], ids=["same-epoch", "later-epoch"])
def test_start_batch_resumes_exactly(tmp_path, reader, start_batch):
    layout = write_ramp_clips(tmp_path, LENGTHS[:22], num_shards=3)
    # Corrupt records shift batch boundaries: resumption must still match a fresh run.
    with tf.io.TFRecordWriter(str(tmp_path / "ramp-corrupt.tfrecord")) as writer:
        writer.write(b"garbage")
        writer.write(serialize_clip("late", np.arange(20000, 20100, dtype=np.int16)))
        writer.write(b"more garbage")
    layout[len(layout)] = (20000, 100)
    fresh, _ = raw_batches(tmp_path, start_batch + 4, reader, normalize=True, noise_std=0.01, per_process_batch=3)
    resumed, _ = raw_batches(tmp_path, 4, reader, normalize=True, noise_std=0.01, per_process_batch=3,
                              start_batch=start_batch)
    for expected, actual in zip(fresh[start_batch:], resumed):
        np.testing.assert_array_equal(expected["anchor"], actual["anchor"])
        np.testing.assert_array_equal(expected["positive"], actual["positive"])


def test_process_shares_are_disjoint_and_cover_all_shards(tmp_path):
    for i in range(8):
        (tmp_path / f"s-{i:05d}-of-00008.tfrecord").write_bytes(b"")
    shares = [local_shards(tmp_path, index, 3) for index in range(3)]
    assert sorted(sum(shares, [])) == sorted(str(p) for p in tmp_path.glob("*.tfrecord"))
    assert [len(share) for share in shares] == [3, 3, 2]
    with pytest.raises(ValueError, match="8 shard.*9 processes"):
        local_shards(tmp_path, 0, 9)


def test_processes_read_disjoint_clips(ramp_dir, reader):
    directory, layout = ramp_dir
    seen = []
    for process in range(2):
        batches, _ = raw_batches(directory, 4, reader, process_index=process, process_count=2)
        seen.append({locate(anchor, layout)[0] for batch in batches for anchor in batch["anchor"]})
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_normalised_crops_have_unit_norm_silence_stays_zero_and_noise_has_its_std(tmp_path, reader):
    write_shards([("loud", np.full(3 * CROP, 0.5, np.float32), []), ("silent", np.zeros(CROP, np.float32), [])],
                 tmp_path, "p", 1)
    batches = pretraining_stream(tmp_path, reader=reader, per_process_batch=2, seed=0, crop_samples=CROP,
                                 process_index=0, process_count=1, noise_std=0.01, shuffle_buffer=1)
    batch = next(batches)
    norms = np.linalg.norm(batch["anchor"], axis=1)
    assert sorted(norms.round(5).tolist()) == [0.0, 1.0]
    silent_row = int(np.argmin(norms))
    np.testing.assert_array_equal(batch["anchor"][silent_row], 0.0)
    assert np.std(batch["positive"][silent_row]) == pytest.approx(0.01, rel=0.25)  # noise only


def test_corrupt_records_are_skipped_and_counted_exactly(tmp_path, reader):
    good = lambda name: serialize_clip(name, np.arange(1, 100, dtype=np.int16))  # noqa: E731
    records = [b"not an example", good("a"), good("b"), b"\x08\x01", good("c"), b"trailing junk"]
    with tf.io.TFRecordWriter(str(tmp_path / "only.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    # One shard and no shuffling, so records come in file order: the counts are known exactly.
    batches = pretraining_stream(tmp_path, reader=reader, per_process_batch=1, seed=0, crop_samples=CROP,
                                 process_index=0, process_count=1, shuffle_buffer=1)
    counts = []
    for _ in range(6):
        next(batches)
        counts.append(batches.skipped_records)
    assert batches.records_per_epoch == 3
    if reader == "tf_data":  # counted as the stream meets them, every epoch
        # a: 1 before it; b: 0; c: 1 ("\x08\x01"); next epoch's a: trailing junk + leading garbage.
        assert counts == [1, 1, 2, 4, 4, 5]
    else:  # all three found when the shards are loaded, once
        assert counts == [3] * 6


def test_truncated_shard_does_not_stop_the_run(tmp_path, reader):
    write_shards([(f"c{i}", np.full(1000, 0.1, np.float32), []) for i in range(4)], tmp_path, "p", 2)
    damaged = sorted(tmp_path.glob("*.tfrecord"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-300])
    os.remove(str(damaged) + COUNT_SUFFIX)  # the sidecar would still say 2: count by reading
    batches = pretraining_stream(tmp_path, reader=reader, per_process_batch=3, seed=0, crop_samples=CROP,
                                 process_index=0, process_count=1)
    assert batches.records_per_epoch == 3
    assert all(next(batches)["anchor"].shape == (3, CROP) for _ in range(3))


def test_epoch_length_comes_from_the_count_sidecars_without_reading_the_shards(tmp_path):
    write_shards([(f"c{i}", np.full(1000, 0.1, np.float32), []) for i in range(5)], tmp_path, "p", 2)
    files = list_shards(tmp_path)
    assert [read_record_count(path) for path in files] == [3, 2]
    assert count_valid_records(files) == 5
    for path in files:
        os.remove(path + COUNT_SUFFIX)
    assert count_valid_records(files) == 5  # parsed instead
    write_record_count(files[0], 1000)  # a sidecar is trusted: nothing is read
    assert count_valid_records(files) == 1002


def test_missing_or_empty_data_gives_a_clear_error(tmp_path, reader):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        pretraining_stream(tmp_path / "no-such-dir", reader=reader, per_process_batch=2, seed=0, process_index=0, process_count=1)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        pretraining_stream(tmp_path, reader=reader, per_process_batch=2, seed=0, process_index=0, process_count=1)
    with tf.io.TFRecordWriter(str(tmp_path / "junk.tfrecord")) as writer:
        writer.write(b"junk")
    with pytest.raises(ValueError, match="no valid records"):
        pretraining_stream(tmp_path, reader=reader, per_process_batch=2, seed=0, process_index=0, process_count=1)


def test_process_defaults_come_from_jax(ramp_dir, reader):
    directory, _ = ramp_dir
    batches = pretraining_stream(directory, reader=reader, per_process_batch=2, seed=0, crop_samples=CROP)
    assert len(batches.files) == 4  # one process: all shards
    assert next(batches)["positive"].shape == (2, CROP)
