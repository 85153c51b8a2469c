"""The supervised baseline: the same frontend and encoder trained with labels.

    logits = Dense_classes(encoder(SpecAugment(frontend(waveform))))     SpecAugment in training only
    loss   = softmax cross-entropy with the clip's class          (single-label tasks)
           | mean sigmoid cross-entropy over classes               (multi-label, e.g. AudioSet)

The paper's supervised rows are such runs, probed afterwards exactly like the self-supervised
checkpoints: `encode` is the same pooled encoder output, so the probe reads either model.
"""
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from leaf_ssl.model import specaugment


class ClassifierModel(nn.Module):
    """Frontend + encoder + linear classifier.

    Attributes:
      frontend: waveform (batch, samples) -> features (batch, frames, channels).
      encoder: `(features, train) -> (batch, dim)` with BatchNorm in 'batch_stats'.
      num_classes: width of the classifier.
      freq_masks, freq_mask_width, time_masks, time_mask_width: SpecAugment of the features
        in training (0 masks disables it).
    """

    waveform_args: ClassVar[int] = 1  # waveforms `__call__` takes (trainer.init_variables)

    frontend: nn.Module
    encoder: nn.Module
    num_classes: int
    freq_masks: int = 2
    freq_mask_width: int = 10
    time_masks: int = 2
    time_mask_width: int = 10

    def setup(self):
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.classifier = nn.Dense(self.num_classes)

    def encode(self, waveform: jax.Array, train: bool = False) -> jax.Array:
        """Pooled encoder output (batch, dim): what linear probes read."""
        return self.encoder(self.frontend(waveform), train=train)

    def __call__(self, waveform: jax.Array, train: bool = True) -> jax.Array:
        """Class logits (batch, num_classes), float32."""
        features = self.frontend(waveform)
        if train and (self.freq_masks or self.time_masks):
            features = specaugment.spec_augment(
                self.make_rng("specaugment"), features, freq_masks=self.freq_masks,
                freq_mask_width=self.freq_mask_width, time_masks=self.time_masks,
                time_mask_width=self.time_mask_width)
        pooled = self.encoder(features, train=train)
        return self.classifier(pooled.astype(jnp.float32))


def classification_loss(logits: jax.Array, labels: jax.Array, *, multi_label: bool) -> jax.Array:
    """Mean loss over the batch; `labels` is multi-hot (batch, classes).

    Single-label: softmax cross-entropy against the (one) labelled class. Multi-label: sigmoid
    cross-entropy averaged over classes.
    """
    logits = logits.astype(jnp.float32)
    if multi_label:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))


def top1_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of clips whose highest-scoring class is one of their labels."""
    predicted = jnp.argmax(logits, axis=-1)
    return jnp.mean(jnp.take_along_axis(labels, predicted[:, None], axis=-1) > 0)


def train_objective(multi_label: bool):
    """The train step's objective for labelled batches {'audio', 'labels'}; see `trainer.Objective`."""
    def objective(model, variables, batch, rngs, capture_intermediates=False):
        logits, mutated = model.apply(variables, batch["audio"], train=True, rngs=rngs,
                                      mutable=["batch_stats", "intermediates"],
                                      capture_intermediates=capture_intermediates)
        loss = classification_loss(logits, batch["labels"], multi_label=multi_label)
        return loss, (mutated, top1_accuracy(logits, batch["labels"]))
    return objective
