"""The evaluators on hand-made embeddings: kNN against a brute-force reference, confusion matrices and
per-class scores counted by hand, few-shot draws, and each evaluator on separable classes."""
import numpy as np
import pytest

from leaf_ssl.evaluation import evaluators, linear
from leaf_ssl.evaluation.cache import SplitEmbeddings, TaskEmbeddings

FAST = linear.ProbeRecipe(epochs=1, min_steps=500, learning_rate=1e-2)


def _split(embeddings, segment_clip, labels, classes):
    targets = np.zeros((len(labels), classes), np.float32)
    for clip, clip_labels in enumerate(labels):
        targets[clip, list(clip_labels)] = 1.0
    return SplitEmbeddings(np.asarray(embeddings, np.float32), np.asarray(segment_clip, np.int64), targets,
                           [f"clip{i}" for i in range(len(labels))], {"count": 0})


def _task(train, test, classes):
    names = [f"class{c}" for c in range(classes)]
    return TaskEmbeddings(names, {"train": _split(*train, classes), "test": _split(*test, classes)}, None, False, 0.0)


def _clusters(rng, classes=3, per_class=12, dim=8, spread=0.05):
    """One clip per segment; class c's embeddings around the c-th basis direction."""
    labels = np.repeat(np.arange(classes), per_class)
    embeddings = np.eye(dim)[labels] + spread * rng.standard_normal((len(labels), dim))
    return embeddings, np.arange(len(labels)), [(label,) for label in labels]


def test_knn_scores_match_a_brute_force_vote():
    rng = np.random.default_rng(0)
    train, query = rng.standard_normal((50, 6)), rng.standard_normal((7, 6))
    targets = np.eye(4)[rng.integers(0, 4, 50)]
    scores = evaluators.knn_scores(train, targets, query, k=5, temperature=0.5, chunk=3)
    for q in range(len(query)):
        similarities = [float(np.dot(query[q], t) / np.linalg.norm(query[q]) / np.linalg.norm(t)) for t in train]
        nearest = sorted(range(len(train)), key=lambda i: -similarities[i])[:5]
        votes = sum(np.exp(similarities[i] / 0.5) * targets[i] for i in nearest)
        np.testing.assert_allclose(scores[q], votes / votes.sum(), rtol=1e-5)


def test_knn_confusion_and_per_class_recall_are_counted_from_its_clip_predictions():
    # 1-d embeddings on a circle: with k=1 each test clip takes its nearest train clip's class.
    angle = lambda degrees: [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]
    train = ([angle(0), angle(120), angle(240)], [0, 1, 2], [(0,), (1,), (2,)])
    # test clips: true 0 near 0 (right), true 0 near 120 (wrong -> 1), true 1 as two segments near 120
    # and 130, true 2 near 0 (wrong -> 0)
    test = ([angle(5), angle(115), angle(120), angle(130), angle(10)], [0, 1, 2, 2, 3], [(0,), (0,), (1,), (2,)])
    evaluation = evaluators.NearestNeighbours(k=1).evaluate(_task(train, test, 3), multi_label=False)
    assert evaluation.confusion == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert evaluation.per_class == {"class0": 0.5, "class1": 1.0, "class2": 0.0}
    assert evaluation.scores == [pytest.approx(2 / 4)] and evaluation.metric == "accuracy"


def test_every_evaluator_separates_separable_classes():
    rng = np.random.default_rng(1)
    task = _task(_clusters(rng, dim=3), _clusters(rng, per_class=4, dim=3), 3)
    for evaluator in (evaluators.NearestNeighbours(k=5), evaluators.Linear(seeds=2, recipe=FAST),
                      evaluators.FewShotLinear(shots=2, seeds=2, recipe=FAST)):
        evaluation = evaluator.evaluate(task, multi_label=False)
        assert evaluation.scores == [1.0] * len(evaluation.scores), evaluator.name
        assert np.trace(evaluation.confusion) == 12


def test_few_shot_draws_that_many_clips_of_each_class_by_seed():
    targets = np.eye(3)[np.repeat(np.arange(3), [10, 10, 2])]
    clips = evaluators.few_shot_clips(targets, 4, seed=0)
    assert np.bincount(targets[clips].argmax(axis=1)).tolist() == [4, 4, 2]  # a class with fewer gives them all
    np.testing.assert_array_equal(clips, evaluators.few_shot_clips(targets, 4, seed=0))
    assert not np.array_equal(clips, evaluators.few_shot_clips(targets, 4, seed=1))


def test_multi_label_gives_average_precision_per_class_and_no_confusion_matrix():
    rng = np.random.default_rng(2)
    embeddings, clips, labels = _clusters(rng)
    labels = [(label, 3) if index % 2 else (label,) for index, (label,) in enumerate(labels)]
    task = _task((embeddings, clips, labels), (embeddings, clips, labels), 4)
    evaluation = evaluators.NearestNeighbours(k=3).evaluate(task, multi_label=True)
    assert evaluation.metric == "mAP" and evaluation.confusion is None
    assert set(evaluation.per_class) == {"class0", "class1", "class2", "class3"}
    assert evaluation.per_class["class0"] == pytest.approx(1.0)  # class 0's clips are its own neighbours


def test_an_unknown_evaluator_is_named():
    with pytest.raises(ValueError, match="unknown evaluator 'svm'; choose one of"):
        evaluators.make_evaluator("svm")
    assert evaluators.make_evaluator("knn", k=3, seeds=5) == evaluators.NearestNeighbours(k=3)


@pytest.mark.slow  # trains
def test_a_run_logs_knn_scores_while_it_trains_that_the_probe_of_its_checkpoint_repeats(tiny_corpus, tmp_path):
    import json

    from leaf_ssl.evaluation import during_training, probe, tasks
    from leaf_ssl.inference import frozen_model
    from leaf_ssl.training import loop
    from tests.tensorboard_events import read_events
    from tests.tiny_config import tiny_config

    config = tiny_config("leaf")
    config.data.train_shards = str(tiny_corpus / "pretrain")  # its tasks are found beside it
    config.evals = ({"evaluator": "knn", "task": "keyword", "every_steps": 3},)
    loop.run(config, tmp_path / "run", evaluations=during_training.TrainingEvaluations(config))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = {line["step"]: line["eval/keyword/knn/accuracy"] for line in lines if "eval_seconds" in line}
    assert sorted(scores) == [0, 3, 4]  # the start, every 3 steps, the end
    assert all("loss" in line for line in lines if "eval_seconds" not in line)
    scalars, _, _ = read_events(tmp_path / "run" / "tensorboard")
    assert scalars["eval/keyword/knn/accuracy"] == pytest.approx(scores)
    # The probe of the last checkpoint, through the other path (restored weights, the cache's
    # embedding), gives the score the live weights gave.
    result = probe.run_probe(frozen_model.load_frozen_model(str(tmp_path / "run")),
                             tasks.resolve_task("keyword", data_dir=str(tiny_corpus)), tmp_path / "probe",
                             evaluator=evaluators.NearestNeighbours(), progress=False)
    assert result["mean"] == pytest.approx(scores[4], abs=1e-6)
    assert (tmp_path / "probe" / "keyword_knn.json").is_file() and len(result["confusion"]) == 3


@pytest.mark.parametrize("entry, message", [
    ({"evaluator": "svm", "task": "keyword", "every_steps": 5}, r"config.evals\[0\]: unknown evaluator 'svm'"),
    ({"evaluator": "knn", "task": "keyword", "every_steps": 0}, r"config.evals\[0\].every_steps must be an integer >= 1"),
    ({"evaluator": "knn", "task": "keyword", "every": 5}, r"config.evals\[0\]: unknown field\(s\) \['every'\]"),
    ({"evaluator": "knn", "task": "keyword", "every_steps": 5}, r"config.evals\[0\]: unknown task 'keyword'.*--config.evals"),
])
def test_a_bad_evaluation_entry_is_one_config_error_naming_it(entry, message, tmp_path):
    from leaf_ssl.evaluation import during_training
    from leaf_ssl.model.configuration import ConfigError
    from tests.tiny_config import tiny_config

    config = tiny_config("leaf")
    config.data.train_shards = str(tmp_path / "shards")  # no corpus beside it: a bare task name is unknown
    config.evals = (entry,)
    with pytest.raises(ConfigError, match=message):
        during_training.TrainingEvaluations(config).resolve()
