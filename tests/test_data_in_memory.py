"""The in-memory reader's own parts: compressed (FLAC, Opus) shards, labelled crops, and the choice of reader.
(Crop geometry, determinism, resuming and sharding are tested for both readers in test_data_pipeline.)"""
import numpy as np
import pytest

from leaf_ssl.data import records, streams
from leaf_ssl.data.in_memory import ClipStore, labelled_stream
from leaf_ssl.data.records import write_shards

CROP = 64


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """A few harmonics with a slow amplitude envelope: audio a lossy codec handles as it handles speech."""
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    tone = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate(rng.uniform(150, 900, 4)))
    return (0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    base = tmp_path_factory.mktemp("encodings")
    clips = [(f"c{i}", _speechlike(0.5 + 0.25 * i, i), [i % 3]) for i in range(6)]
    for encoding in records.ENCODINGS:
        with records.ShardWriter(base / encoding, "p", 2, encoding=encoding) as writer:
            for clip_id, waveform, labels in clips:
                writer.write(clip_id, waveform, labels)
    return base, clips


def test_flac_shards_decode_to_the_pcm_shards_samples_and_opus_close_to_them(corpora):
    base, clips = corpora
    files = {encoding: records.list_shards(base / encoding) for encoding in records.ENCODINGS}
    stores = {encoding: ClipStore(paths) for encoding, paths in files.items()}
    pcm = stores["pcm"]
    np.testing.assert_array_equal(stores["flac"].samples, pcm.samples)
    np.testing.assert_array_equal(stores["flac"].lengths, pcm.lengths)
    assert stores["opus"].lengths.tolist() == pcm.lengths.tolist()  # Opus's pre-skip is undone on decoding
    error = stores["opus"].samples.astype(np.float64) - pcm.samples
    snr = 10 * np.log10(np.sum(pcm.samples.astype(np.float64) ** 2) / np.sum(error ** 2))
    assert snr > 10, f"Opus at its bit rate should keep these tones (SNR {snr:.1f} dB)"
    size = {encoding: sum(len(record) for path in paths for _, record in records.shard_records(path, None))
            for encoding, paths in files.items()}
    assert size["flac"] < size["pcm"] and size["opus"] < size["pcm"] / 4
    assert [clip.labels.tolist() for clip in records.read_clips(base / "opus")] == [
        clip.labels.tolist() for clip in records.read_clips(base / "pcm")]


def test_compressed_shards_are_read_into_memory_and_tf_data_says_it_cannot(corpora):
    base, _ = corpora
    assert streams.choose_reader("auto", base / "pcm") == "tf_data"  # TensorFlow imports in this suite
    assert streams.choose_reader("auto", base / "opus") == "in_memory"
    with pytest.raises(ValueError, match="hold opus audio.*'in_memory'"):
        streams.choose_reader("tf_data", base / "opus")
    with pytest.raises(ValueError, match="not one of"):
        streams.choose_reader("grain", base / "pcm")
    batch = next(streams.pretraining_stream(base / "flac", per_process_batch=4, seed=0, crop_samples=CROP,
                                            process_index=0, process_count=1))
    assert batch["anchor"].shape == batch["positive"].shape == (4, CROP)
    np.testing.assert_allclose(np.linalg.norm(batch["anchor"], axis=1), 1.0, rtol=1e-5)


def test_a_corrupt_compressed_payload_is_skipped_and_counted(tmp_path):
    import tensorflow as tf
    good = records.serialize_clip("good", _speechlike(0.5, 0), encoding="flac")
    bad = tf.train.Example.FromString(good)
    bad.features.feature["audio"].bytes_list.value[0] = b"fLaC but not really"
    with tf.io.TFRecordWriter(str(tmp_path / "s.tfrecord")) as writer:
        writer.write(good)
        writer.write(bad.SerializeToString())
    store = ClipStore(records.list_shards(tmp_path))
    assert len(store) == 1 and sum(store.skipped.values()) == 1
    assert "flac audio does not decode" in next(iter(store.skipped))


def test_labelled_crops_carry_their_clip_s_labels_and_unlabelled_clips_are_counted(tmp_path):
    # Clip i holds the constant value 100 * (i + 1) and the labels {i % 3, 3}: a crop's value names its clip.
    clips = [(f"c{i}", np.full(CROP * 2, 100 * (i + 1), np.int16), [i % 3, 3]) for i in range(9)]
    clips.append(("unlabelled", np.full(CROP * 2, 5000, np.int16), []))
    clips.append(("out-of-range", np.full(CROP * 2, 6000, np.int16), [7]))
    write_shards(clips, tmp_path, "l", 3)
    stream = labelled_stream(tmp_path, per_process_batch=5, seed=1, num_classes=4, crop_samples=CROP,
                             process_index=0, process_count=1, normalize=False)
    assert stream.records_per_epoch == 9 and stream.skipped_records == 2
    seen = set()
    for _ in range(4):
        batch = next(stream)
        assert batch["audio"].shape == (5, CROP) and batch["labels"].shape == (5, 4)
        for crop, labels in zip(batch["audio"], batch["labels"]):
            clip = int(round(crop[0] * 32768 / 100)) - 1
            np.testing.assert_array_equal(crop, crop[0])
            assert labels.tolist() == [float(k in (clip % 3, 3)) for k in range(4)]
            seen.add(clip)
    assert seen == set(range(9))


def test_pack_rewrites_a_corpus_tree_keeping_its_clips_files_and_counts(corpora, tmp_path):
    from leaf_ssl.data.pack import pack_corpus
    base, clips = corpora
    source = tmp_path / "corpus"
    (source / "tasks" / "t").mkdir(parents=True)
    (source / "corpus.json").write_text("{}")
    (source / "packages").mkdir()
    (source / "packages" / "cache.deb").write_bytes(b"build input")  # not part of the corpus: not copied
    write_shards([(clip_id, waveform, labels) for clip_id, waveform, labels in clips], source / "tasks" / "t", "train", 2)
    report = pack_corpus(source, tmp_path / "packed", "flac", workers=1, progress=False)
    assert report["clips"] == len(clips) and report["shards"] == 2 and report["skipped"] == {}
    assert (tmp_path / "packed" / "corpus.json").read_text() == "{}" and report["other_files"] == 1
    assert not (tmp_path / "packed" / "packages").exists()
    packed = tmp_path / "packed" / "tasks" / "t"
    assert [records.read_record_count(path) for path in records.list_shards(packed)] == [3, 3]
    originals = list(records.read_clips(source / "tasks" / "t"))
    for original, copy in zip(originals, records.read_clips(packed), strict=True):
        assert (copy.id, copy.labels.tolist()) == (original.id, original.labels.tolist())
        np.testing.assert_array_equal(copy.waveform, original.waveform)  # FLAC is lossless
    with pytest.raises(ValueError, match="not a compressed one"):
        pack_corpus(source, tmp_path / "pcm", "pcm")
