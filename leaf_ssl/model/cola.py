"""COLA: contrastive learning of general-purpose audio representations (Saeed et al., 2021).

The model maps a waveform crop to an embedding and scores every (anchor, positive) pair:

    features  = frontend(waveform)                      float32 (batch, frames, channels)
    features' = SpecAugment(features)                   positives only, training only
    h         = encoder(features')                      pooled, e.g. 1280-d for EfficientNet-B0
    z         = tanh(LayerNorm(Dense_512(h)))              (projection_head='cola', COLA's)
              | Dense_512(relu(LayerNorm(Dense_512(h))))  (projection_head='mlp', SimCLR-style)
    logits    = z_a W z_pᵀ            (similarity='bilinear', no temperature, as COLA)
              | z_a z_pᵀ / τ          (similarity='dot', on L2-normalised z; SimCLR-style)

and the loss is softmax cross-entropy with each anchor's own positive as the target class.
Anchors and positives go through the frontend and encoder as one concatenated batch: one
encoder call instead of two, and BatchNorm sees both views.
"""
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from leaf_ssl.model import specaugment

SIMILARITIES = ("bilinear", "dot")
PROJECTIONS = ("cola", "mlp")


def check_head(projection_head: str, similarity: str) -> None:
    """Raises ValueError, naming the `model.*` field, for a head or similarity this model cannot build."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"model.similarity={similarity!r} is not valid; choose one of {list(SIMILARITIES)}")
    if projection_head not in PROJECTIONS:
        raise ValueError(f"model.projection_head={projection_head!r} is not valid; choose one of {list(PROJECTIONS)}")
    if projection_head == "mlp" and similarity != "dot":
        raise ValueError("model.projection_head='mlp' needs model.similarity='dot' (its output is unbounded; only "
                         "the cosine similarity is scale-free)")


class ColaModel(nn.Module):
    """Frontend + encoder + projection head + pair similarity.

    Attributes:
      frontend: an audio frontend module, waveform (batch, samples) -> (batch, frames, channels).
      encoder: a module `(features, train) -> (batch, dim)` with BatchNorm in 'batch_stats'.
      embedding_dim: width of the projection head (512 in COLA).
      projection_head: 'cola' (Dense, LayerNorm, tanh) or 'mlp' (a hidden ReLU layer, then a linear
        output; for 'dot' only). A deeper head takes up more of the contrastive task's invariances,
        leaving the pooled features the probe reads less collapsed (SimCLR, Chen et al. 2020).
      similarity: 'bilinear' (learnable W, no temperature) or 'dot' (cosine / temperature).
      temperature: used by 'dot' only.
      freq_masks, freq_mask_width, time_masks, time_mask_width: SpecAugment on positives;
        0 masks disables it.
    """

    waveform_args: ClassVar[int] = 2  # waveforms `__call__` takes (trainer.init_variables)

    frontend: nn.Module
    encoder: nn.Module
    embedding_dim: int = 512
    projection_head: str = "cola"
    similarity: str = "bilinear"
    temperature: float = 0.1
    freq_masks: int = 2
    freq_mask_width: int = 10
    time_masks: int = 2
    time_mask_width: int = 10

    def setup(self):
        check_head(self.projection_head, self.similarity)
        self.projection = nn.Dense(self.embedding_dim)
        self.projection_norm = nn.LayerNorm()
        if self.projection_head == "mlp":
            self.projection_out = nn.Dense(self.embedding_dim)
        if self.similarity == "bilinear":
            # COLA's bilinear layer is a bias-free Keras Dense, whose default init is Glorot uniform.
            self.bilinear = self.param("bilinear", nn.initializers.glorot_uniform(),
                                       (self.embedding_dim, self.embedding_dim))

    def encode(self, waveform: jax.Array, train: bool = False) -> jax.Array:
        """Pooled encoder output (batch, dim): what linear probes read."""
        return self.encoder(self.frontend(waveform), train=train)

    def embed(self, waveform: jax.Array, train: bool = False) -> jax.Array:
        """Projection-head embedding z (batch, embedding_dim)."""
        return self._project(self.encode(waveform, train=train))

    def _project(self, pooled: jax.Array) -> jax.Array:
        hidden = self.projection_norm(self.projection(pooled.astype(jnp.float32)))
        if self.projection_head == "mlp":
            return self.projection_out(nn.relu(hidden))
        return jnp.tanh(hidden)

    def _augment(self, features: jax.Array) -> jax.Array:
        if self.freq_masks == 0 and self.time_masks == 0:
            return features
        key = self.make_rng("specaugment")
        return specaugment.spec_augment(
            key, features, freq_masks=self.freq_masks, freq_mask_width=self.freq_mask_width,
            time_masks=self.time_masks, time_mask_width=self.time_mask_width)

    def __call__(self, anchor: jax.Array, positive: jax.Array, train: bool = True,
                 negatives_axis: str | None = None) -> tuple[jax.Array, jax.Array]:
        """Pair logits and targets.

        Args:
          anchor, positive: (batch, samples) waveform crops; row i of each is a pair.
          train: BatchNorm in training mode, drop-path and SpecAugment on.
          negatives_axis: None scores each anchor against this batch's positives. Inside a
            `shard_map`, the mesh axis name gathers the positives of every device, so each
            anchor meets the whole global batch as negatives; gradients flow back through
            the gather to the device that computed each positive.
        Returns:
          logits (batch, n_candidates) float32 and the target column of each row (batch,).
        """
        batch = anchor.shape[0]
        features = self.frontend(jnp.concatenate([anchor, positive], axis=0))
        anchor_features, positive_features = features[:batch], features[batch:]
        if train:
            positive_features = self._augment(positive_features)
        pooled = self.encoder(jnp.concatenate([anchor_features, positive_features], axis=0), train=train)
        z = self._project(pooled)
        z_anchor, z_positive = z[:batch], z[batch:]

        targets = jnp.arange(batch)
        if negatives_axis is not None:
            z_positive = lax.all_gather(z_positive, negatives_axis, tiled=True)
            targets = targets + lax.axis_index(negatives_axis) * batch
        return self._similarity(z_anchor, z_positive), targets

    def _similarity(self, z_anchor: jax.Array, z_positive: jax.Array) -> jax.Array:
        if self.similarity == "bilinear":
            return z_anchor @ self.bilinear @ z_positive.T
        unit = lambda z: z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-6)
        return unit(z_anchor) @ unit(z_positive).T / self.temperature


def contrastive_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of each row against its target column."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, targets[:, None], axis=-1))


def contrastive_accuracy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Fraction of anchors whose own positive scores highest."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == targets)


def train_objective(negatives_axis: str | None):
    """The train step's objective for pair batches {'anchor', 'positive'}; see `trainer.Objective`."""
    def objective(model, variables, batch, rngs, capture_intermediates=False):
        (logits, targets), mutated = model.apply(
            variables, batch["anchor"], batch["positive"], train=True, negatives_axis=negatives_axis,
            rngs=rngs, mutable=["batch_stats", "intermediates"], capture_intermediates=capture_intermediates)
        return contrastive_loss(logits, targets), (mutated, contrastive_accuracy(logits, targets))
    return objective
