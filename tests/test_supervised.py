"""The supervised baseline: its loss and accuracy, its labelled input stream, its train step, and
a run end to end whose checkpoint the probe reads as a 'supervised' row."""
import json

import ml_collections
import numpy as np
import optax
import pytest
import tensorflow as tf

from leaf_ssl.model import build, cola, configuration, objectives, supervised, validation
from leaf_ssl.training import trainer
from leaf_ssl.data import sharding
from leaf_ssl.data.pipeline import labelled_dataset
from leaf_ssl.data.records import serialize_clip, write_shards
from leaf_ssl.evaluation.probe import describe_model
from leaf_ssl.inference.frozen_model import load_frozen_model
from leaf_ssl.training import loop
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only


def test_losses_and_accuracy_match_their_formulas():
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
    one_hot = np.array([[0, 0, 1], [0, 0, 1]], np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected_softmax_ce = -np.mean([log_softmax[0, 2], log_softmax[1, 2]])
    np.testing.assert_allclose(supervised.classification_loss(logits, one_hot, multi_label=False),
                               expected_softmax_ce, rtol=1e-6)

    multi_hot = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    probabilities = 1 / (1 + np.exp(-logits))
    expected_bce = -np.mean(multi_hot * np.log(probabilities) + (1 - multi_hot) * np.log(1 - probabilities))
    np.testing.assert_allclose(supervised.classification_loss(logits, multi_hot, multi_label=True),
                               expected_bce, rtol=1e-6)
    # Row 0 predicts class 0 (labelled), row 1 predicts class 2 (not labelled).
    assert float(supervised.top1_accuracy(logits, multi_hot)) == 0.5


def test_labelled_stream_gives_each_crop_its_own_labels_and_counts_unusable_records(tmp_path):
    # Clip i is the constant (i + 1) / 100, so a crop tells which clip it came from.
    labels_of = {i: [i % 3] if i % 4 else [0, 2] for i in range(12)}
    clips = [(f"c{i}", np.full(900 + 50 * i, (i + 1) / 100, np.float32), labels_of[i]) for i in range(12)]
    writer = write_shards(clips, tmp_path, "train", num_shards=3)
    assert writer.written == 12
    # Records the stream must drop: no label, and a label beyond the class count.
    write_shards([("unlabelled", np.full(900, 0.5, np.float32), []), ("too_big", np.full(900, 0.5, np.float32), [7])],
                 tmp_path, "train_extra", num_shards=1)

    stream = labelled_dataset(tmp_path, per_process_batch=7, seed=3, num_classes=3, crop_samples=800,
                              process_index=0, process_count=1, normalize=False)
    seen = []
    for _ in range(4):  # 28 crops: two epochs of the 12 usable clips and then some
        batch = next(stream)
        assert batch["audio"].shape == (7, 800) and batch["labels"].shape == (7, 3)
        for audio, labels in zip(batch["audio"], batch["labels"]):
            clip = int(round(audio[0] * 100)) - 1
            assert np.all(audio == audio[0]), "one crop comes from one clip"
            expected = np.zeros(3, np.float32)
            expected[labels_of[clip]] = 1
            np.testing.assert_array_equal(labels, expected)
            seen.append(clip)
    assert set(seen[:12]) == set(range(12)), "each epoch visits every usable clip once"
    assert stream.skipped_records == 4, "the two unusable records, in each of two epochs"


def test_repeated_steps_on_one_batch_fit_it(tmp_path):
    info = {"name": "toy", "classes": ["a", "b", "c", "d"], "multi_label": False}
    (tmp_path / "task.json").write_text(json.dumps(info))
    config = tiny_config("leaf,supervised")
    config.supervised.task_dir = str(tmp_path)
    config.model.freq_masks = config.model.time_masks = 0  # nothing random between the repeats
    config = build.resolve_supervised_task(config)
    assert config.supervised.num_classes == 4 and config.data.train_shards == f"{tmp_path}/train-*.tfrecord"

    mesh = trainer.make_mesh()
    model = build.build_model(config)
    crop = build.crop_samples(config)
    schedule = optax.constant_schedule(3e-3)
    optimizer = optax.adamw(schedule, weight_decay=0.0)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    step = trainer.make_train_step(model, optimizer, schedule, mesh, build.train_objective(config))
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, 16)
    # Each class its own tone, so the frontend can tell them apart.
    t = np.arange(crop) / 16000
    audio = np.stack([0.3 * np.sin(2 * np.pi * (300 + 900 * c) * t) for c in classes]).astype(np.float32)
    batch = sharding.to_global_batch({"audio": audio, "labels": np.eye(4, dtype=np.float32)[classes]}, mesh)
    losses = []
    for _ in range(20):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_supervised_run_end_to_end_and_probe_reads_it(tiny_corpus, tmp_path):
    corpus = tiny_corpus
    config = tiny_config("leaf,supervised")
    config.supervised.task_dir = str(corpus / "tasks" / "keyword")
    history = loop.run(config, tmp_path)
    assert [record["step"] for record in history] == [2, 4]
    assert all(np.isfinite(record["loss"]) for record in history)
    keyword_classes = json.loads((corpus / "tasks" / "keyword" / "task.json").read_text())["classes"]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["supervised"]["num_classes"] == len(keyword_classes)

    frozen = load_frozen_model(str(tmp_path))
    assert frozen.step == 4 and describe_model(frozen)["training"] == "supervised"
    assert frozen.variables["params"]["classifier"]["kernel"].shape[-1] == len(keyword_classes)


def test_supervised_config_errors_name_the_field(tmp_path):
    config = tiny_config("leaf,supervised")
    with pytest.raises(ValueError, match="supervised.task_dir is empty"):
        validation.validate_config(config, num_devices=8)
    config.supervised.task_dir = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no task.json"):
        build.resolve_supervised_task(config)
    (tmp_path / "task.json").write_text(json.dumps({"name": "x", "classes": ["a", "b"]}))
    config.supervised.num_classes = 5
    with pytest.raises(ValueError, match="lists 2 classes"):
        build.resolve_supervised_task(config)


def test_serialized_labels_round_trip_through_the_stream(tmp_path):
    (tmp_path / "one.tfrecord").write_bytes(b"")  # an empty shard is fine next to a real one
    with tf.io.TFRecordWriter(str(tmp_path / "two.tfrecord")) as writer:
        writer.write(serialize_clip("x", np.full(400, 0.25, np.float32), [1, 4]))
    stream = labelled_dataset(tmp_path, per_process_batch=1, seed=0, num_classes=5, crop_samples=400,
                              process_index=0, process_count=1)
    np.testing.assert_array_equal(next(stream)["labels"][0], [0, 1, 0, 0, 1])


def test_each_objective_builds_its_own_model():
    assert isinstance(build.build_model(tiny_config("leaf")), cola.ColaModel)
    supervised_config = tiny_config("leaf,supervised")
    supervised_config.supervised.num_classes = 3
    assert isinstance(build.build_model(supervised_config), supervised.ClassifierModel)


def test_a_config_saved_before_the_objective_field_keeps_its_objective():
    for arg, name in (("leaf", "cola"), ("leaf,supervised", "supervised")):
        saved = tiny_config(arg).to_dict()
        del saved["objective"]  # a run's config.json from before the field
        assert objectives.objective_of(ml_collections.ConfigDict(saved)).name == name


def test_an_objective_that_does_not_match_the_config_is_named():
    config = tiny_config("leaf")
    config.objective = "contrastive"
    with pytest.raises(configuration.ConfigError, match="config.objective='contrastive' is not valid"):
        validation.validate_config(config, num_devices=8)
    config.objective = "supervised"
    with pytest.raises(configuration.ConfigError, match="needs a config.supervised section"):
        validation.validate_config(config, num_devices=8)
    config = tiny_config("leaf,supervised")
    config.objective = "cola"
    with pytest.raises(configuration.ConfigError, match="config.supervised is not a known field"):
        validation.validate_config(config, num_devices=8)
