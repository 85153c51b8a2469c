"""The linear probe: a Dense(num_classes) layer on frozen segment embeddings, and its scores.

Training (the paper's probe recipe): every segment embedding is an example labelled with its clip's
label(s); features are standardised with the training segments' mean and standard deviation
(so one learning rate suits every encoder's output scale); optax AdamW (lr 1e-3, optax's default
weight decay 1e-4), 50 epochs of shuffled batches of 512, and more epochs where 50 would be fewer
than `min_steps` (2,000) optimizer steps. Softmax cross-entropy for single-label tasks, per-class
sigmoid cross-entropy for multi-label ones.

Why the step floor: 50 epochs of batch 512 are 8,300 steps on speech_commands, but 150 on a task
of 1,500 segments, where the head stops far from the optimum of its convex loss: on the demo tasks
the heads of normalised networks still fit only 46-64% of their own training segments after 50
epochs, and gain up to 17 test points by 2,000 steps (docs/results.md). The floor changes nothing
on a task of 20,480 segments or more.

Evaluation: the logits of all segments of a test clip are averaged, then scored per clip:
accuracy of the argmax (single-label) or mean average precision over classes (multi-label).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class ProbeRecipe:
    epochs: int = 50
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    min_steps: int = 2000  # epochs are added until this many steps are reached

    def batch_for(self, num_examples: int) -> int:
        """Examples per step: `batch_size`, or all of them when there are fewer."""
        return min(self.batch_size, num_examples)

    def steps_per_epoch(self, num_examples: int) -> int:
        return -(-num_examples // self.batch_for(num_examples))

    def epochs_for(self, num_examples: int) -> int:
        """`epochs`, or as many more as `min_steps` steps of batches of `num_examples` need."""
        return max(self.epochs, -(-self.min_steps // self.steps_per_epoch(num_examples)))


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    """A trained linear head with the standardisation it was trained with."""
    mean: np.ndarray
    scale: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return ((embeddings - self.mean) / self.scale) @ self.kernel + self.bias


def train_linear_probe(embeddings: np.ndarray, targets: np.ndarray, *, multi_label: bool, seed: int,
                       recipe: ProbeRecipe = ProbeRecipe()) -> LinearProbe:
    """Fits a linear head.

    Args:
      embeddings: (segments, dim) float32.
      targets: (segments, classes) multi-hot (one-hot for single-label tasks).
      multi_label: sigmoid loss instead of softmax.
      seed: initialisation and shuffling.
    """
    embeddings = np.asarray(embeddings, np.float32)
    mean = embeddings.mean(axis=0)
    scale = np.maximum(embeddings.std(axis=0), 1e-6)  # constant features stay 0 instead of NaN
    standardised = (embeddings - mean) / scale
    batch_indices, batch_weights = _epoch_batches(len(embeddings), recipe, seed)

    optimizer = optax.adamw(recipe.learning_rate, weight_decay=recipe.weight_decay)
    init_key = jax.random.key(seed)
    dim, classes = embeddings.shape[1], targets.shape[1]
    params = {"kernel": jax.random.normal(init_key, (dim, classes)) * (1.0 / np.sqrt(dim)),
              "bias": jnp.zeros((classes,))}
    kernel, bias = _fit(params, optimizer.init(params), jnp.asarray(standardised), jnp.asarray(targets, jnp.float32),
                        jnp.asarray(batch_indices), jnp.asarray(batch_weights), optimizer, multi_label)
    return LinearProbe(mean, scale, np.asarray(kernel), np.asarray(bias))


def _epoch_batches(num_examples: int, recipe: ProbeRecipe, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, batch) example indices and 0/1 weights: one shuffled pass per epoch
    (`recipe.epochs_for`), the last batch of each epoch padded with weight-0 examples so that every
    step has the same shape."""
    batch = recipe.batch_for(num_examples)
    epochs = recipe.epochs_for(num_examples)
    rng = np.random.default_rng(seed)
    indices = np.zeros((epochs, recipe.steps_per_epoch(num_examples) * batch), np.int32)
    weights = np.zeros_like(indices, dtype=np.float32)
    for epoch in range(epochs):
        indices[epoch, :num_examples] = rng.permutation(num_examples)
        weights[epoch, :num_examples] = 1.0
    return indices.reshape(-1, batch), weights.reshape(-1, batch)


def _fit(params, opt_state, features, targets, batch_indices, batch_weights, optimizer, multi_label):
    """All steps of all epochs as one jitted scan."""
    def loss_fn(params, x, y, w):
        logits = x @ params["kernel"] + params["bias"]
        if multi_label:
            per_example = optax.sigmoid_binary_cross_entropy(logits, y).mean(axis=-1)
        else:
            per_example = optax.softmax_cross_entropy(logits, y)
        return jnp.sum(per_example * w) / jnp.maximum(jnp.sum(w), 1.0)

    def step(carry, batch):
        params, opt_state = carry
        indices, weights = batch
        grads = jax.grad(loss_fn)(params, features[indices], targets[indices], weights)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    @jax.jit
    def run(params, opt_state, batch_indices, batch_weights):
        (params, _), _ = jax.lax.scan(step, (params, opt_state), (batch_indices, batch_weights))
        return params["kernel"], params["bias"]

    return run(params, opt_state, batch_indices, batch_weights)


def clip_logits(segment_logits: np.ndarray, segment_clip: np.ndarray, num_clips: int) -> np.ndarray:
    """Mean of the logits of each clip's segments: (clips, classes). `segment_clip[i]` is the clip of
    segment i; every clip must have at least one segment."""
    totals = np.zeros((num_clips, segment_logits.shape[1]), np.float64)
    np.add.at(totals, segment_clip, segment_logits)
    counts = np.bincount(segment_clip, minlength=num_clips)
    if np.any(counts == 0):
        raise ValueError(f"clips {np.flatnonzero(counts == 0)[:10].tolist()} have no segment")
    return totals / counts[:, None]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax is the label."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Average precision of one class: sum over distinct score thresholds, from the highest, of
    (recall gained) x (precision at that threshold). Tied scores count as one threshold (as in
    scikit-learn), so the order of tied items does not matter. NaN when nothing is relevant."""
    scores, relevant = np.asarray(scores, np.float64), np.asarray(relevant, bool)
    if not relevant.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], relevant[order]
    true_positives, ranked = np.cumsum(hits), np.arange(1, len(hits) + 1)
    # the last position of each run of equal scores is where that threshold's counts are read
    threshold_ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    precision = true_positives[threshold_ends] / ranked[threshold_ends]
    recall = true_positives[threshold_ends] / hits.sum()
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def participation_ratio(embeddings: np.ndarray) -> float:
    """Effective number of dimensions of standardised `embeddings` (rows are examples):
    (sum of the covariance's eigenvalues)^2 / (sum of their squares), from 1 (one direction) to the
    dimension (isotropic). Standardised like the probe's inputs, so it measures what the head reads;
    a collapsed encoder passes on few dimensions however wide it is."""
    embeddings = np.asarray(embeddings, np.float64)
    standardised = (embeddings - embeddings.mean(axis=0)) / np.maximum(embeddings.std(axis=0), 1e-6)
    # trace(C)^2 / trace(C^2) = trace(C)^2 / ||C||_F^2: no eigendecomposition needed.
    covariance = standardised.T @ standardised / max(len(standardised) - 1, 1)
    squared_norm = float(np.sum(covariance * covariance))
    return float(np.trace(covariance) ** 2 / squared_norm) if squared_norm > 0 else 0.0


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes with at least one relevant clip of their average precision."""
    per_class = [average_precision(scores[:, c], targets[:, c]) for c in range(targets.shape[1])]
    return float(np.nanmean(per_class))
