"""Evaluators of frozen embeddings, picked by name: the linear probe, k-nearest neighbours, few-shot linear.

An evaluator is fed a task's embeddings (`cache.TaskEmbeddings`: each split's segment embeddings,
the clip of each segment, each clip's multi-hot targets), however they were made: by a checkpoint
(`python -m leaf_ssl.probe --evaluator ...`), or by the live parameters of a run while it trains
(`evaluation.during_training`). Each scores the test clips from clip-level class scores, the mean of
their segments' scores, and returns an `Evaluation`: per seed the task's metric (accuracy, or mAP
for a multi-label task), and for the first seed each class's score and, single-label, the confusion
matrix (rows: true class, columns: predicted).

* `linear`: the paper's probe (`evaluation.linear`): a linear head per seed on every train segment.
* `knn`: no training, seconds. Each test segment's `k` nearest train segments by cosine similarity
  vote for their clips' classes with weight exp(similarity / `temperature`); one deterministic score.
* `fewshot`: a linear head per seed on the segments of `shots` train clips per class, drawn by the
  seed: how well the features separate classes from few examples.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, Protocol

import numpy as np

from leaf_ssl.evaluation import linear
from leaf_ssl.evaluation.cache import TaskEmbeddings


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What an evaluator measured on one task."""
    metric: str                       # "accuracy" or "mAP"
    scores: list[float]               # per seed
    per_class: dict[str, float]       # per class (first seed): recall (accuracy) or average precision (mAP)
    confusion: list[list[int]] | None  # clips, rows the true class, columns the predicted (single-label)
    details: dict                     # what the evaluator did, for the result's record


class Evaluator(Protocol):
    name: ClassVar[str]   # its name on the command line and in config.evals
    title: ClassVar[str]  # its name in a report

    def evaluate(self, embedded: TaskEmbeddings, multi_label: bool,
                 on_seed: Callable[[int, float], None] | None = None) -> Evaluation:
        """Scores the test split; `on_seed(seed, score)` hears of each seed as it is done."""


def knn_scores(train_embeddings: np.ndarray, train_targets: np.ndarray, query: np.ndarray, *, k: int,
               temperature: float, chunk: int = 1024) -> np.ndarray:
    """(queries, classes) class scores: the softmax-weighted votes of each query's `k` nearest train
    rows by cosine similarity, normalised to sum to 1 over the neighbours."""
    def unit(x):
        x = np.asarray(x, np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    train, targets = unit(train_embeddings), np.asarray(train_targets, np.float32)
    k = min(k, len(train))
    scores = []
    for start in range(0, len(query), chunk):  # a (chunk, train) similarity block at a time
        similarity = unit(query[start:start + chunk]) @ train.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(similarity, nearest, axis=1) / temperature)
        votes = np.einsum("qk,qkc->qc", weights, targets[nearest])
        scores.append(votes / weights.sum(axis=1, keepdims=True))
    return np.concatenate(scores) if scores else np.zeros((0, targets.shape[1]), np.float32)


def _metric(clip_scores: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """The task's metric of one set of clip scores: mAP (multi-label) or accuracy."""
    if multi_label:
        return linear.mean_average_precision(clip_scores, targets)
    return linear.accuracy(clip_scores, targets.argmax(axis=1))


def _summarise(clip_scores: list[np.ndarray], targets: np.ndarray, classes: list[str], multi_label: bool,
               details: dict) -> Evaluation:
    """Per seed the metric of its clip scores; per class and the confusion matrix from the first."""
    scores = [_metric(s, targets, multi_label) for s in clip_scores]
    first = clip_scores[0]
    if multi_label:
        per_class = {name: linear.average_precision(first[:, c], targets[:, c]) for c, name in enumerate(classes)}
        return Evaluation("mAP", scores, {name: float(v) for name, v in per_class.items() if np.isfinite(v)},
                          None, details)
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(confusion, (targets.argmax(axis=1), first.argmax(axis=1)), 1)
    per_class = {name: float(confusion[c, c] / confusion[c].sum()) for c, name in enumerate(classes)
                 if confusion[c].sum()}
    return Evaluation("accuracy", scores, per_class, confusion.tolist(), details)


def _linear_heads(embedded: TaskEmbeddings, multi_label: bool, seeds: int, recipe: linear.ProbeRecipe,
                  on_seed: Callable[[int, float], None] | None,
                  train_clips: Callable[[int], np.ndarray] | None = None) -> list[np.ndarray]:
    """Per seed, the test clips' scores by a linear head trained on the train segments (of the clips
    `train_clips(seed)` picks, or all)."""
    train, test = embedded.splits["train"], embedded.splits["test"]
    clip_scores = []
    for seed in range(seeds):
        keep = slice(None) if train_clips is None else np.isin(train.segment_clip, train_clips(seed))
        head = linear.train_linear_probe(train.embeddings[keep], train.segment_targets()[keep],
                                         multi_label=multi_label, seed=seed, recipe=recipe)
        clip_scores.append(_clip_scores(head.logits(test.embeddings), embedded))
        if on_seed is not None:
            on_seed(seed, _metric(clip_scores[-1], test.targets, multi_label))
    return clip_scores


def _clip_scores(segment_scores: np.ndarray, embedded: TaskEmbeddings) -> np.ndarray:
    test = embedded.splits["test"]
    return linear.clip_logits(segment_scores, test.segment_clip, test.num_clips)


@dataclasses.dataclass(frozen=True)
class Linear:
    name: ClassVar[str] = "linear"
    title: ClassVar[str] = "Linear probe"
    seeds: int = 3
    recipe: linear.ProbeRecipe = linear.ProbeRecipe()

    def evaluate(self, embedded: TaskEmbeddings, multi_label: bool,
                 on_seed: Callable[[int, float], None] | None = None) -> Evaluation:
        train, test = embedded.splits["train"], embedded.splits["test"]
        clip_scores = _linear_heads(embedded, multi_label, self.seeds, self.recipe, on_seed)
        return _summarise(clip_scores, test.targets, embedded.classes, multi_label,
                          {"epochs": self.recipe.epochs_for(len(train.segment_clip)),
                           "min_steps": self.recipe.min_steps, "batch_size": self.recipe.batch_size,
                           "learning_rate": self.recipe.learning_rate, "weight_decay": self.recipe.weight_decay,
                           "features": "standardised with train-segment mean and std",
                           "evaluation": "logits averaged over all segments of each test clip"})


@dataclasses.dataclass(frozen=True)
class NearestNeighbours:
    name: ClassVar[str] = "knn"
    title: ClassVar[str] = "k-nearest neighbours"
    k: int = 20
    temperature: float = 0.07

    def evaluate(self, embedded: TaskEmbeddings, multi_label: bool, on_seed=None) -> Evaluation:
        train, test = embedded.splits["train"], embedded.splits["test"]
        segment_scores = knn_scores(train.embeddings, train.segment_targets(), test.embeddings,
                                    k=self.k, temperature=self.temperature)
        score = _summarise([_clip_scores(segment_scores, embedded)], test.targets, embedded.classes, multi_label,
                           {"k": self.k, "temperature": self.temperature, "similarity": "cosine",
                            "evaluation": "neighbour votes averaged over all segments of each test clip"})
        if on_seed is not None:
            on_seed(0, score.scores[0])
        return score


@dataclasses.dataclass(frozen=True)
class FewShotLinear:
    name: ClassVar[str] = "fewshot"
    title: ClassVar[str] = "Few-shot linear probe"
    shots: int = 5
    seeds: int = 3
    recipe: linear.ProbeRecipe = linear.ProbeRecipe()

    def evaluate(self, embedded: TaskEmbeddings, multi_label: bool,
                 on_seed: Callable[[int, float], None] | None = None) -> Evaluation:
        train, test = embedded.splits["train"], embedded.splits["test"]
        clip_scores = _linear_heads(embedded, multi_label, self.seeds, self.recipe, on_seed,
                                    train_clips=lambda seed: few_shot_clips(train.targets, self.shots, seed))
        return _summarise(clip_scores, test.targets, embedded.classes, multi_label,
                          {"shots": self.shots, "clips_per_seed": len(few_shot_clips(train.targets, self.shots, 0)),
                           "min_steps": self.recipe.min_steps, "learning_rate": self.recipe.learning_rate,
                           "evaluation": "logits averaged over all segments of each test clip"})


def few_shot_clips(targets: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Sorted indices of up to `shots` train clips per class (all of a class with fewer), drawn by
    `seed`; a multi-label clip drawn for one class counts for every class it carries."""
    rng = np.random.default_rng(seed)
    chosen = set()
    for c in range(targets.shape[1]):
        members = np.flatnonzero(targets[:, c] > 0)
        chosen.update(rng.choice(members, size=min(shots, len(members)), replace=False).tolist())
    return np.asarray(sorted(chosen), np.int64)


EVALUATORS = {"linear": Linear, "knn": NearestNeighbours, "fewshot": FewShotLinear}


def make_evaluator(name: str, **options):
    """The evaluator `name` with its options (e.g. `seeds`, `k`, `shots`); unknown names are refused."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; choose one of {list(EVALUATORS)}")
    fields = {field.name for field in dataclasses.fields(EVALUATORS[name])}
    return EVALUATORS[name](**{key: value for key, value in options.items() if key in fields})
