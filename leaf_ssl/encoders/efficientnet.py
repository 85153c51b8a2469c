"""EfficientNet encoder (Tan & Le 2019) for time-frequency audio features.

This follows the Keras `tf.keras.applications.EfficientNetB0` architecture that
COLA (Saeed et al. 2021) and LEAF-SSL (Yadav & Zeghidour 2022) used as their
encoder, built with `include_top=False, weights=None` and a global pooling
layer: stem conv -> 7 stages of MBConv blocks -> 1x1 head conv -> global pool.
There is no classifier head; the module returns the pooled embedding.

Deliberate differences from the Keras model:
  * The Keras preprocessing layers (``Rescaling(1/255)`` and an un-adapted, hence
    identity, ``Normalization``) are left out: the input is a frontend output,
    not 8-bit pixels, and since the bias-free stem conv is followed by
    BatchNorm a constant input scale would only interact with BN's epsilon.
  * Convolutions use TF "SAME" padding everywhere. For stride 2 this is exactly
    the padding Keras builds with ``ZeroPadding2D(correct_pad(...))`` + "valid".

Width and depth multipliers use the reference rounding rules, so scaled-down
variants (used by the tests) share every line of code with B0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Keras EfficientNet initialises every conv kernel with He-style variance
# scaling over fan-out, drawn from a truncated normal.
_CONV_KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "truncated_normal")
# Keras stores a depthwise kernel as (k, k, channels, 1), so its fan-out is k*k.
# Flax stores it as (k, k, 1, channels), where k*k is the *fan-in*; using
# fan_in here reproduces the Keras variance.
_DEPTHWISE_KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")

# BatchNorm hyper-parameters of the reference (Keras momentum 0.99, eps 1e-3).
BN_MOMENTUM = 0.99
_BN_EPSILON = 1e-3

_CHANNEL_DIVISOR = 8
_B0_STEM_CHANNELS = 32
_B0_HEAD_CHANNELS = 1280
_SQUEEZE_EXCITE_RATIO = 0.25
POOLING_MODES = ("avg", "max")
DEPTHWISE_IMPLS = ("auto", "conv", "shifts")


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One row of the EfficientNet-B0 stage table (before width/depth scaling)."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


B0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(expand_ratio=1, kernel_size=3, stride=1, in_channels=32, out_channels=16, repeats=1),
    StageSpec(expand_ratio=6, kernel_size=3, stride=2, in_channels=16, out_channels=24, repeats=2),
    StageSpec(expand_ratio=6, kernel_size=5, stride=2, in_channels=24, out_channels=40, repeats=2),
    StageSpec(expand_ratio=6, kernel_size=3, stride=2, in_channels=40, out_channels=80, repeats=3),
    StageSpec(expand_ratio=6, kernel_size=5, stride=1, in_channels=80, out_channels=112, repeats=3),
    StageSpec(expand_ratio=6, kernel_size=5, stride=2, in_channels=112, out_channels=192, repeats=4),
    StageSpec(expand_ratio=6, kernel_size=3, stride=1, in_channels=192, out_channels=320, repeats=1),
)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A fully resolved MBConv block: scaled channels, stride and drop-path rate."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    drop_path_rate: float

    @property
    def has_residual(self) -> bool:
        """Whether the block adds its input back (only when shapes are unchanged)."""
        return self.stride == 1 and self.in_channels == self.out_channels


def round_channels(channels: int, width_mult: float, divisor: int = _CHANNEL_DIVISOR) -> int:
    """Scales a channel count by `width_mult` and rounds it as the reference does.

    Rounds to the nearest multiple of `divisor` (at least `divisor`), then adds
    one more `divisor` if rounding lost more than 10% of the scaled width.
    """
    scaled = channels * width_mult
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Scales the number of blocks in a stage by `depth_mult`, rounding up."""
    return int(math.ceil(depth_mult * repeats))


def efficientnet_block_specs(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    drop_path_rate: float = 0.2,
    stages: Sequence[StageSpec] = B0_STAGES,
) -> list[BlockSpec]:
    """Expands the stage table into the list of MBConv blocks of the network.

    Only the first block of a stage changes stride and channel count; the
    repeats keep stride 1 and the stage's output width. The drop-path rate grows
    linearly with the global block index: block `i` of `n` gets
    `drop_path_rate * i / n`, so the first block is never dropped.
    """
    stage_repeats = [round_repeats(stage.repeats, depth_mult) for stage in stages]
    total_blocks = sum(stage_repeats)
    specs = []
    for stage, repeats in zip(stages, stage_repeats):
        out_channels = round_channels(stage.out_channels, width_mult)
        for repeat_index in range(repeats):
            is_first = repeat_index == 0
            specs.append(
                BlockSpec(
                    expand_ratio=stage.expand_ratio,
                    kernel_size=stage.kernel_size,
                    stride=stage.stride if is_first else 1,
                    in_channels=round_channels(stage.in_channels, width_mult) if is_first else out_channels,
                    out_channels=out_channels,
                    drop_path_rate=drop_path_rate * len(specs) / total_blocks,
                )
            )
    return specs


def _batch_norm(train: bool, dtype: Any, axis_name: str | None, momentum: float, name: str) -> nn.BatchNorm:
    """BatchNorm with the reference hyper-parameters; must be called inside a compact method.

    In training it normalises with (optionally cross-device) batch statistics and
    updates the running averages; otherwise it uses the running averages.
    """
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=momentum,
        epsilon=_BN_EPSILON,
        axis_name=axis_name,
        dtype=dtype,
        name=name,
    )


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per example.

    Kept examples are scaled by 1 / (1 - rate) so that the expectation is
    unchanged and evaluation needs no rescaling. Draws from the 'dropout' RNG.
    """

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        keep_prob = 1.0 - self.rate
        mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = jax.random.bernoulli(self.make_rng("dropout"), keep_prob, mask_shape)
        return jnp.where(keep, x / keep_prob, jnp.zeros_like(x))


class DepthwiseConv(nn.Module):
    """k x k depthwise convolution, "SAME" padding, no bias. Its kernel is stored as nn.Conv's with
    `feature_group_count=channels` stores it, (k, k, 1, channels), so both paths read each other's
    parameters.

    impl: 'conv' (XLA's grouped convolution), 'shifts' (the sum over the k*k taps of a strided
    slice of the padded input times that tap's per-channel weights: only slices, products and
    sums, whose gradients are the same kind of operations), or 'auto': shifts on the CPU, where
    XLA's grouped-convolution gradient is many times slower (docs/performance.md), conv elsewhere.
    """

    kernel_size: int
    stride: int = 1
    impl: str = "auto"
    dtype: Any = jnp.float32
    kernel_init: Any = _DEPTHWISE_KERNEL_INIT

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.impl not in DEPTHWISE_IMPLS:
            raise ValueError(f"depthwise_impl must be one of {DEPTHWISE_IMPLS}, got {self.impl!r}")
        k, stride, channels = self.kernel_size, self.stride, x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, 1, channels), jnp.float32)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        impl = self.impl if self.impl != "auto" else ("shifts" if jax.default_backend() == "cpu" else "conv")
        if impl == "conv":
            return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                                feature_group_count=channels)
        height, width = x.shape[1:3]
        out_height, out_width = -(-height // stride), -(-width // stride)
        pads = [max((out - 1) * stride + k - size, 0) for out, size in ((out_height, height), (out_width, width))]
        # "SAME" puts the odd padding element at the end, as lax's convolution does.
        padded = jnp.pad(x, ((0, 0), (pads[0] // 2, pads[0] - pads[0] // 2),
                             (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))
        out = None
        for row in range(k):
            for column in range(k):
                tap = jax.lax.slice(padded, (0, row, column, 0),
                                    (padded.shape[0], row + (out_height - 1) * stride + 1,
                                     column + (out_width - 1) * stride + 1, channels), (1, stride, stride, 1))
                term = tap * kernel[row, column, 0]
                out = term if out is None else out + term
        return out


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> bottleneck (SiLU) -> sigmoid gate."""

    squeeze_channels: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        squeezed = jnp.mean(x, axis=(1, 2), keepdims=True)
        squeezed = nn.Conv(
            self.squeeze_channels, (1, 1), kernel_init=_CONV_KERNEL_INIT, dtype=self.dtype, name="reduce"
        )(squeezed)
        squeezed = nn.silu(squeezed)
        gate = nn.Conv(channels, (1, 1), kernel_init=_CONV_KERNEL_INIT, dtype=self.dtype, name="expand")(squeezed)
        return x * nn.sigmoid(gate)


class MBConvBlock(nn.Module):
    """Inverted-residual block: 1x1 expand, depthwise conv, squeeze-excite, 1x1 project."""

    spec: BlockSpec
    dtype: Any = jnp.float32
    bn_axis_name: str | None = None
    bn_momentum: float = BN_MOMENTUM
    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool) -> jax.Array:
        spec = self.spec
        expanded_channels = spec.in_channels * spec.expand_ratio
        x = inputs
        if spec.expand_ratio != 1:
            x = nn.Conv(
                expanded_channels,
                (1, 1),
                use_bias=False,
                kernel_init=_CONV_KERNEL_INIT,
                dtype=self.dtype,
                name="expand_conv",
            )(x)
            x = nn.silu(_batch_norm(train, self.dtype, self.bn_axis_name, self.bn_momentum, "expand_bn")(x))

        x = DepthwiseConv(spec.kernel_size, spec.stride, self.depthwise_impl, self.dtype, name="depthwise_conv")(x)
        x = nn.silu(_batch_norm(train, self.dtype, self.bn_axis_name, self.bn_momentum, "depthwise_bn")(x))

        # The bottleneck width is a fraction of the block *input* channels, not
        # of the expanded ones (as in the reference implementation).
        squeeze_channels = max(1, int(spec.in_channels * _SQUEEZE_EXCITE_RATIO))
        x = SqueezeExcite(squeeze_channels, dtype=self.dtype, name="squeeze_excite")(x)

        x = nn.Conv(
            spec.out_channels,
            (1, 1),
            use_bias=False,
            kernel_init=_CONV_KERNEL_INIT,
            dtype=self.dtype,
            name="project_conv",
        )(x)
        x = _batch_norm(train, self.dtype, self.bn_axis_name, self.bn_momentum, "project_bn")(x)

        if spec.has_residual:
            x = DropPath(spec.drop_path_rate, name="drop_path")(x, train) + inputs
        return x


class EfficientNet(nn.Module):
    """EfficientNet feature extractor with global pooling and no classifier.

    The input is a batch of time-frequency features `(batch, frames, channels)`
    which is treated as a single-channel image `(batch, frames, channels, 1)`.
    The output is the pooled embedding `(batch, output_dim)` in float32.

    Attributes:
      width_mult: channel multiplier (B0: 1.0), rounded to multiples of 8.
      depth_mult: block-count multiplier per stage (B0: 1.0), rounded up.
      drop_path_rate: stochastic-depth rate of the last block; earlier blocks
        get linearly smaller rates. The default 0.2 is Keras' EfficientNetB0
        `drop_connect_rate`, which COLA used unchanged.
      pooling: global pooling over the final feature map, 'max' or 'avg'. The
        default 'max' is COLA's `pooling_type` default for its encoder.
      dtype: computation dtype (e.g. jnp.bfloat16). Parameters and BatchNorm
        statistics stay float32; the embedding is returned as float32.
      bn_axis_name: if set, BatchNorm batch statistics are averaged over this
        mapped axis (e.g. 'data' inside `jax.shard_map`) -- synchronised BN.
      bn_momentum: decay of BatchNorm's running averages (the reference's 0.99). A run of
        a few hundred steps or fewer needs less (e.g. 0.9): after n steps the running
        averages still hold momentum**n of their initial values, and inference uses them.
      depthwise_impl: the depthwise convolutions' path, see `DepthwiseConv` (same results).
      stem_channels: stem conv width before width scaling (B0: 32).
      head_channels: head conv width before width scaling (B0: 1280).
      stages: the MBConv stage table before scaling (B0 by default).
    """

    width_mult: float = 1.0
    depth_mult: float = 1.0
    drop_path_rate: float = 0.2
    pooling: str = "max"
    dtype: Any = jnp.float32
    bn_axis_name: str | None = None
    bn_momentum: float = BN_MOMENTUM
    depthwise_impl: str = "auto"
    stem_channels: int = _B0_STEM_CHANNELS
    head_channels: int = _B0_HEAD_CHANNELS
    stages: Sequence[StageSpec] = B0_STAGES

    @property
    def output_dim(self) -> int:
        """Size of the pooled embedding (1280 for B0)."""
        return round_channels(self.head_channels, self.width_mult)

    @nn.compact
    def __call__(self, features: jax.Array, train: bool) -> jax.Array:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if features.ndim != 3:
            raise ValueError(f"expected features of shape (batch, frames, channels), got shape {features.shape}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

        x = features[..., None].astype(self.dtype)
        x = nn.Conv(
            round_channels(self.stem_channels, self.width_mult),
            (3, 3),
            strides=2,
            padding="SAME",
            use_bias=False,
            kernel_init=_CONV_KERNEL_INIT,
            dtype=self.dtype,
            name="stem_conv",
        )(x)
        x = nn.silu(_batch_norm(train, self.dtype, self.bn_axis_name, self.bn_momentum, "stem_bn")(x))

        block_specs = efficientnet_block_specs(self.width_mult, self.depth_mult, self.drop_path_rate, self.stages)
        for index, spec in enumerate(block_specs):
            x = MBConvBlock(spec, dtype=self.dtype, bn_axis_name=self.bn_axis_name, bn_momentum=self.bn_momentum,
                            depthwise_impl=self.depthwise_impl, name=f"block_{index:02d}")(
                x, train
            )

        x = nn.Conv(
            self.output_dim,
            (1, 1),
            use_bias=False,
            kernel_init=_CONV_KERNEL_INIT,
            dtype=self.dtype,
            name="head_conv",
        )(x)
        x = nn.silu(_batch_norm(train, self.dtype, self.bn_axis_name, self.bn_momentum, "head_bn")(x))
        # Exposed for inspection with `mutable=['intermediates']`; a no-op otherwise.
        self.sow("intermediates", "final_feature_map", x)

        # Pool in float32 so a bfloat16 model still averages over many frames accurately.
        x = x.astype(jnp.float32)
        if self.pooling == "avg":
            return jnp.mean(x, axis=(1, 2))
        return jnp.max(x, axis=(1, 2))


def encoder_output_dim(module: EfficientNet) -> int:
    """Size of the embedding `module` returns, without running it."""
    return module.output_dim
