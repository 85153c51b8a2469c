"""Tests for leaf_ssl.encoders (EfficientNet over time-frequency features).

Expectations come from outside the code under test: published EfficientNet
parameter counts and embedding widths, a parameter formula over a stage table
written out here, and direct computations of BatchNorm / pooling quantities.
Apart from the parameter count (jax.eval_shape, no compute) everything runs the
'efficientnet_tiny' preset on small inputs to stay fast on CPU. All tiny
variants share one parameter structure, so the variables are initialised once
per module and every forward pass goes through one jitted helper, whose
compilations are cached across tests.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from leaf_ssl.encoders import (
    ENCODERS,
    EfficientNet,
    efficientnet_block_specs,
    encoder_output_dim,
    make_encoder,
)
from leaf_ssl.encoders.efficientnet import DepthwiseConv, DropPath

FEATURE_SHAPE = (2, 96, 40)  # (batch, frames, frequency channels)

# EfficientNet-B0 written out independently of the implementation:
# (expand ratio, kernel, stride, input channels, output channels, repeats).
B0_TABLE = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


def tiny_encoder(**overrides):
    """The tiny preset without stochastic depth unless a test asks for it."""
    return make_encoder({"name": "efficientnet_tiny", "drop_path_rate": 0.0, **overrides})


def random_features(seed=0, shape=FEATURE_SHAPE):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


@functools.partial(jax.jit, static_argnames=("model", "train"))
def run_encoder(model, variables, features, train, dropout_key=None):
    """One forward pass; returns (embedding, state with 'batch_stats' and 'intermediates')."""
    rngs = {} if dropout_key is None else {"dropout": dropout_key}
    return model.apply(variables, features, train=train, mutable=["batch_stats", "intermediates"], rngs=rngs)


def flatten_batch_norms(batch_stats, prefix=""):
    """(path, {'mean', 'var'}) for every BatchNorm layer in a batch_stats tree."""
    if set(batch_stats) == {"mean", "var"}:
        return [(prefix, batch_stats)]
    return [item for name, sub in batch_stats.items() for item in flatten_batch_norms(sub, f"{prefix}/{name}")]


def with_batch_stats(variables, state):
    return {"params": variables["params"], "batch_stats": state["batch_stats"]}


@pytest.fixture(scope="module")
def tiny_variables():
    """Initial variables of the tiny preset, valid for every tiny variant and input length."""
    model = tiny_encoder()
    key, features = jax.random.key(42), random_features()
    # The ~100 truncated-normal initialisers make this the costliest compilation
    # of the file; it runs once, so skip XLA's backend optimisations (~3x faster).
    init = jax.jit(lambda key, x: model.init(key, x, train=False)).lower(key, features)
    return init.compile(compiler_options={"xla_backend_optimization_level": 0})(key, features)


def parameter_count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def b0_parameter_counts_by_formula(input_channels=1):
    """(trainable params, BN running-stat entries) of EfficientNet-B0 without classifier."""
    params = 0
    batch_norm_channels = 0

    def conv_bn(fan_in, out_channels):
        nonlocal params, batch_norm_channels
        params += fan_in * out_channels + 2 * out_channels  # bias-free kernel + BN scale/bias
        batch_norm_channels += out_channels

    conv_bn(3 * 3 * input_channels, 32)  # stem
    for expand_ratio, kernel, _, in_channels, out_channels, repeats in B0_TABLE:
        for repeat in range(repeats):
            block_in = in_channels if repeat == 0 else out_channels
            expanded = block_in * expand_ratio
            if expand_ratio != 1:
                conv_bn(block_in, expanded)
            conv_bn(kernel * kernel, expanded)  # depthwise: one k x k filter per channel
            squeezed = max(1, block_in // 4)
            params += expanded * squeezed + squeezed + squeezed * expanded + expanded  # SE convs with bias
            conv_bn(expanded, out_channels)
    conv_bn(320, 1280)  # head
    return params, 2 * batch_norm_channels  # running mean + running variance


# ---------------------------------------------------------------------------
# Architecture: parameter count, widths, depths, shapes.


def test_b0_parameter_count_matches_reference():
    # torchvision efficientnet_b0: 5,288,548 params; minus the 1280x1000+1000
    # classifier = 4,007,548 for the 3-channel `features` (also Keras
    # EfficientNetB0(include_top=False)'s trainable count). A 1-channel stem
    # drops 2 * (3*3*32) kernel weights.
    reference_three_channel = 5_288_548 - (1280 * 1000 + 1000)
    assert reference_three_channel == 4_007_548
    expected_params = reference_three_channel - 2 * 3 * 3 * 32
    # Keras reports 42,023 non-trainable params for the no-top B0: BN running
    # mean/variance plus 7 in its (3-channel) input Normalization layer.
    expected_running_stats = 42_023 - 7

    assert b0_parameter_counts_by_formula(input_channels=3) == (4_007_548, expected_running_stats)
    assert b0_parameter_counts_by_formula(input_channels=1) == (expected_params, expected_running_stats)

    model = EfficientNet()
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(FEATURE_SHAPE), train=False))
    assert set(variables) == {"params", "batch_stats"}
    assert parameter_count(variables["params"]) == expected_params == 4_006_972
    assert parameter_count(variables["batch_stats"]) == expected_running_stats
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))


def test_b0_block_schedule():
    specs = efficientnet_block_specs(width_mult=1.0, depth_mult=1.0, drop_path_rate=0.2)
    expected = []
    for expand_ratio, kernel, stride, in_channels, out_channels, repeats in B0_TABLE:
        for repeat in range(repeats):
            first = repeat == 0
            expected.append(
                (expand_ratio, kernel, stride if first else 1, in_channels if first else out_channels, out_channels)
            )
    assert [(s.expand_ratio, s.kernel_size, s.stride, s.in_channels, s.out_channels) for s in specs] == expected
    assert len(specs) == 16
    # Stochastic depth grows linearly with the block index, starting at 0.
    np.testing.assert_allclose([s.drop_path_rate for s in specs], [0.2 * i / 16 for i in range(16)])
    # Residual connections exactly on the repeated (stride-1, same-width) blocks.
    assert [s.has_residual for s in specs] == [i not in (0, 1, 3, 5, 8, 11, 15) for i in range(16)]


@pytest.mark.parametrize(
    "width_mult, expected_dim",
    # Published embedding widths of Keras EfficientNetB0..B7 (include_top=False).
    [(1.0, 1280), (1.1, 1408), (1.2, 1536), (1.4, 1792), (1.6, 2048), (1.8, 2304), (2.0, 2560)],
)
def test_width_multiplier_rounding_matches_published_widths(width_mult, expected_dim):
    assert encoder_output_dim(EfficientNet(width_mult=width_mult)) == expected_dim


@pytest.mark.parametrize(
    "depth_mult, expected_blocks",
    # Block counts of Keras EfficientNetB0 (1.0), B4 (1.8: 2,4,4,6,6,8,2) and B7 (3.1: 4,7,7,10,10,13,4).
    [(1.0, 16), (1.8, 32), (3.1, 55)],
)
def test_depth_multiplier_rounds_up_per_stage(depth_mult, expected_blocks):
    assert len(efficientnet_block_specs(depth_mult=depth_mult)) == expected_blocks


def test_output_shapes_b0_and_tiny(tiny_variables):
    b0 = make_encoder({"name": "efficientnet_b0"})
    b0_output = jax.eval_shape(
        lambda x: b0.init_with_output(jax.random.key(0), x, train=False)[0], jnp.zeros(FEATURE_SHAPE)
    )
    assert b0_output.shape == (FEATURE_SHAPE[0], 1280) and b0_output.dtype == jnp.float32
    assert encoder_output_dim(b0) == b0.output_dim == 1280

    tiny = make_encoder({"name": "efficientnet_tiny"})
    embedding = jax.jit(lambda v, x: tiny.apply(v, x, train=False))(tiny_variables, random_features())
    assert embedding.shape == (FEATURE_SHAPE[0], encoder_output_dim(tiny))
    assert embedding.dtype == jnp.float32
    assert np.all(np.isfinite(embedding))
    # Any input length gives the same embedding width (global pooling).
    longer = jax.eval_shape(lambda x: tiny.apply(tiny_variables, x, train=False), jnp.zeros((1, 150, 40)))
    assert longer.shape == (1, encoder_output_dim(tiny))


def test_features_must_be_three_dimensional(tiny_variables):
    with pytest.raises(ValueError, match="batch, frames, channels"):
        tiny_encoder().apply(tiny_variables, jnp.zeros((2, 96, 40, 1)), train=False)


# ---------------------------------------------------------------------------
# Train / eval behaviour.


def test_train_updates_batch_stats_with_reference_momentum(tiny_variables):
    model = tiny_encoder()
    features = random_features()
    _, state = run_encoder(model, tiny_variables, features, train=True)
    new_stats = state["batch_stats"]
    # Every BN layer has seen data. (Running means may legitimately stay ~0
    # where a linear layer follows a BN, so check the variances.)
    old_variances = [bn["var"] for _, bn in flatten_batch_norms(tiny_variables["batch_stats"])]
    new_variances = [bn["var"] for _, bn in flatten_batch_norms(new_stats)]
    assert len(new_variances) == len(old_variances) > 0
    for old, new in zip(old_variances, new_variances):
        assert not np.allclose(old, new)

    # The stem BN's running averages after one step, computed directly from the
    # stem convolution: running = 0.99 * initial + 0.01 * batch statistic.
    stem_kernel = tiny_variables["params"]["stem_conv"]["kernel"]
    stem_output = jax.lax.conv_general_dilated(
        features[..., None], stem_kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    batch_mean = stem_output.mean(axis=(0, 1, 2))
    batch_var = stem_output.var(axis=(0, 1, 2))
    np.testing.assert_allclose(new_stats["stem_bn"]["mean"], 0.01 * batch_mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_stats["stem_bn"]["var"], 0.99 + 0.01 * batch_var, rtol=1e-4, atol=1e-6)


def test_eval_uses_running_averages_and_is_deterministic(tiny_variables):
    model = tiny_encoder()
    features = random_features()
    # Move the running averages away from their initial values first.
    _, state = run_encoder(model, tiny_variables, features, train=True)
    variables = with_batch_stats(tiny_variables, state)

    first, eval_state = run_encoder(model, variables, features, train=False)
    second = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, features)
    np.testing.assert_array_equal(first, second)
    jax.tree.map(np.testing.assert_array_equal, eval_state["batch_stats"], variables["batch_stats"])

    # With running averages an example's embedding does not depend on the rest
    # of the batch; training-mode BN normalises with the batch's statistics.
    swapped = features[::-1]
    swapped_eval, _ = run_encoder(model, variables, swapped.at[0].set(random_features(seed=7)[0]), train=False)
    np.testing.assert_allclose(swapped_eval[1], first[0], rtol=1e-4, atol=1e-5)
    swapped_train, _ = run_encoder(model, variables, swapped.at[0].set(random_features(seed=7)[0]), train=True)
    first_train, _ = run_encoder(model, variables, features, train=True)
    assert not np.allclose(swapped_train[1], first_train[0], atol=1e-3)


# ---------------------------------------------------------------------------
# Stochastic depth.


def test_drop_path_layer_drops_whole_examples_and_preserves_expectation():
    rate = 0.25
    inputs = jnp.ones((4000, 2, 3, 4))
    outputs = DropPath(rate).apply({}, inputs, train=True, rngs={"dropout": jax.random.key(0)})
    per_example = np.asarray(outputs).reshape(4000, -1)
    kept = per_example[:, 0] > 0
    # All positions of an example share one decision; kept ones are rescaled.
    np.testing.assert_allclose(per_example[kept], 1.0 / (1.0 - rate), rtol=1e-6)
    np.testing.assert_array_equal(per_example[~kept], 0.0)
    # 4000 Bernoulli(0.75) draws: std of the kept fraction ~ 0.007.
    assert abs(kept.mean() - (1.0 - rate)) < 0.03
    np.testing.assert_array_equal(DropPath(rate).apply({}, inputs, train=False), inputs)


def test_drop_path_randomises_train_outputs_only(tiny_variables):
    model = tiny_encoder(drop_path_rate=0.5)
    features = random_features()

    def train_output(seed):
        return run_encoder(model, tiny_variables, features, train=True, dropout_key=jax.random.key(seed))[0]

    def eval_output(seed):
        return run_encoder(model, tiny_variables, features, train=False, dropout_key=jax.random.key(seed))[0]

    np.testing.assert_array_equal(train_output(0), train_output(0))
    assert not np.allclose(train_output(0), train_output(1))
    np.testing.assert_array_equal(eval_output(0), eval_output(1))


def test_zero_drop_path_needs_no_rng(tiny_variables):
    model = tiny_encoder(drop_path_rate=0.0)
    first, _ = run_encoder(model, tiny_variables, random_features(), train=True)
    second, _ = run_encoder(model, tiny_variables, random_features(), train=True)
    np.testing.assert_array_equal(first, second)


# ---------------------------------------------------------------------------
# Pooling and dtype.


def test_pooling_matches_reduction_of_final_feature_map(tiny_variables):
    features = random_features()
    max_embedding, state = run_encoder(tiny_encoder(pooling="max"), tiny_variables, features, train=False)
    avg_embedding, _ = run_encoder(tiny_encoder(pooling="avg"), tiny_variables, features, train=False)
    (feature_map,) = state["intermediates"]["final_feature_map"]

    # Input downsampled 32x (SAME padding: ceil), with the head's channel count.
    assert feature_map.shape == (2, math.ceil(96 / 32), math.ceil(40 / 32), encoder_output_dim(tiny_encoder()))
    reference_map = np.asarray(feature_map, np.float64)
    np.testing.assert_allclose(avg_embedding, reference_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(max_embedding, reference_map.max(axis=(1, 2)), rtol=1e-6)
    assert not np.allclose(avg_embedding, max_embedding)


def test_unknown_pooling_is_rejected(tiny_variables):
    with pytest.raises(ValueError, match="pooling"):
        tiny_encoder(pooling="sum").apply(tiny_variables, random_features(), train=False)


def test_bfloat16_keeps_float32_params_and_output_close_to_float32(tiny_variables):
    features = random_features()
    bf16_model = make_encoder({"name": "efficientnet_tiny", "drop_path_rate": 0.0}, dtype="bfloat16")
    assert bf16_model.dtype == jnp.bfloat16

    bf16_variables = jax.eval_shape(lambda: bf16_model.init(jax.random.key(0), features, train=False))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(bf16_variables))

    # Training mode, so every BN normalises and the comparison is well scaled.
    f32_output, _ = run_encoder(tiny_encoder(), tiny_variables, features, train=True)
    bf16_output, bf16_state = run_encoder(bf16_model, tiny_variables, features, train=True)
    assert bf16_output.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(bf16_state["batch_stats"]))
    # bfloat16 keeps ~3 significant digits; over the tiny net's 10 blocks the
    # rounding error accumulates to ~6% (about 0.6% per block).
    relative_error = np.linalg.norm(bf16_output - f32_output) / np.linalg.norm(f32_output)
    assert relative_error < 0.1, relative_error
    # bfloat16 really is used: the results are not bit-identical.
    assert not np.array_equal(bf16_output, f32_output)


# ---------------------------------------------------------------------------
# Synchronised BatchNorm across devices.


def test_synchronised_batch_norm_in_shard_map_matches_single_device(tiny_variables):
    assert len(jax.devices()) >= 2, "tests/conftest.py sets up 8 fake CPU devices"
    mesh = Mesh(np.array(jax.devices()[:2]), ("data",))
    features = random_features()  # one example per device
    synced_model = tiny_encoder(bn_axis_name="data")
    unsynced_model = tiny_encoder()

    def synced_train_step(variables, features):
        output, updates = synced_model.apply(variables, features, train=True, mutable=["batch_stats"])
        return output, updates["batch_stats"]

    def unsynced_train_output(variables, features):
        output, _ = unsynced_model.apply(variables, features, train=True, mutable=["batch_stats"])
        return output

    sharded_step = jax.jit(
        jax.shard_map(synced_train_step, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P()))
    )
    synced_output, synced_stats = sharded_step(tiny_variables, features)
    reference_output, reference_state = run_encoder(unsynced_model, tiny_variables, features, train=True)

    np.testing.assert_allclose(synced_output, reference_output, rtol=1e-4, atol=1e-4)
    jax.tree.map(
        lambda synced, reference: np.testing.assert_allclose(synced, reference, rtol=1e-4, atol=1e-5),
        synced_stats,
        reference_state["batch_stats"],
    )

    # Control: per-device statistics (no axis name) give a different result.
    unsynced_output = jax.jit(
        jax.shard_map(unsynced_train_output, mesh=mesh, in_specs=(P(), P("data")), out_specs=P("data"))
    )(tiny_variables, features)
    assert not np.allclose(unsynced_output, reference_output, atol=1e-3)


# ---------------------------------------------------------------------------
# make_encoder.


def test_make_encoder_presets_and_overrides():
    assert {"efficientnet_b0", "efficientnet_tiny"} <= set(ENCODERS)
    b0 = make_encoder(ml_collections.ConfigDict({"name": "efficientnet_b0"}))
    assert (b0.width_mult, b0.depth_mult, b0.drop_path_rate, b0.dtype) == (1.0, 1.0, 0.2, jnp.float32)

    config = ml_collections.ConfigDict(
        {"name": "efficientnet_tiny", "drop_path_rate": 0.1, "pooling": "avg", "dtype": "bfloat16"}
    )
    tiny = make_encoder(config)
    assert tiny.width_mult < 1.0 and tiny.depth_mult < 1.0
    assert (tiny.drop_path_rate, tiny.pooling, tiny.dtype) == (0.1, "avg", jnp.bfloat16)
    # The dtype argument takes precedence over the config field.
    assert make_encoder(config, dtype="float32").dtype == jnp.float32
    assert make_encoder({"name": "efficientnet_tiny", "dtype": None}).dtype == jnp.float32
    assert make_encoder({"name": "efficientnet_tiny", "width_mult": 0.5}).width_mult == 0.5


def test_make_encoder_rejects_unknown_name_field_and_dtype():
    with pytest.raises(ValueError, match="efficientnet_b0.*efficientnet_tiny"):
        make_encoder({"name": "resnet50"})
    with pytest.raises(ValueError, match="valid names"):
        make_encoder({"width_mult": 1.0})
    with pytest.raises(ValueError, match="num_classes.*valid fields.*drop_path_rate"):
        make_encoder({"name": "efficientnet_b0", "num_classes": 10})
    with pytest.raises(ValueError, match="float16.*valid dtypes"):
        make_encoder({"name": "efficientnet_b0"}, dtype="float16")


# ---------------------------------------------------------------------------
# Depthwise convolution paths: the sum of shifted slices against XLA's grouped convolution.

@pytest.mark.parametrize("kernel_size, stride, height, width", [(3, 1, 9, 7), (3, 2, 9, 7), (5, 2, 10, 6),
                                                                 (5, 1, 4, 3), (3, 2, 1, 2)])
def test_depthwise_shifts_equal_the_grouped_convolution_and_its_gradients(kernel_size, stride, height, width):
    channels = 6
    x = random_features(1, (2, height, width, channels))
    reference = nn.Conv(channels, (kernel_size, kernel_size), strides=stride, padding="SAME",
                        feature_group_count=channels, use_bias=False)
    kernel = reference.init(jax.random.key(2), x)["params"]["kernel"]
    cotangent = random_features(3, reference.apply({"params": {"kernel": kernel}}, x).shape)

    def output_and_gradients(apply):
        out, pullback = jax.vjp(lambda kernel, x: apply({"params": {"kernel": kernel}}, x), kernel, x)
        return (out, *pullback(cotangent))

    expected = output_and_gradients(reference.apply)
    for impl in ("shifts", "conv"):
        found = output_and_gradients(DepthwiseConv(kernel_size, stride, impl).apply)
        for name, want, got in zip(("output", "kernel gradient", "input gradient"), expected, found):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{impl}: {name}")


def test_depthwise_paths_give_one_encoder_output_and_share_parameters(tiny_variables):
    features = random_features(4)
    outputs = {impl: run_encoder(tiny_encoder(depthwise_impl=impl), tiny_variables, features, train=True)[0]
               for impl in ("conv", "shifts")}
    np.testing.assert_allclose(outputs["shifts"], outputs["conv"], rtol=1e-4, atol=1e-4)


def test_unknown_depthwise_path_is_rejected(tiny_variables):
    with pytest.raises(ValueError, match="depthwise_impl must be one of"):
        run_encoder(tiny_encoder(depthwise_impl="winograd"), tiny_variables, random_features(), train=False)
