"""Probe arithmetic without any model: segments, segment-averaged logits, accuracy, AP/mAP, the head."""
import math

import numpy as np
import pytest

from leaf_ssl.evaluation import linear
from leaf_ssl.inference import windows


@pytest.mark.parametrize("num_samples, expected", [
    (400, [0]),                    # shorter than a segment: one, padded
    (1000, [0]),                   # exactly one segment
    (2000, [0, 1000]),             # whole segments only
    (2500, [0, 1000, 1500]),       # remainder: one more segment aligned to the clip's end
])
def test_segment_starts(num_samples, expected):
    assert windows.segment_starts(num_samples, 1000) == expected


def test_segments_pad_short_clips_and_end_align_the_remainder():
    waveform = np.arange(1, 2501, dtype=np.float32)
    cut = windows.segment_windows(waveform, 1000)
    rows = cut.rows(0, len(cut))
    assert rows.shape == (3, 1000)
    assert rows[2, 0] == 1501 and rows[2, -1] == 2500
    short = windows.segment_windows(np.ones(300, np.float32), 1000).rows(0, 1)
    assert short.shape == (1, 1000) and short[0, :300].sum() == 300 and not short[0, 300:].any()


def test_clip_logits_average_each_clips_segments():
    segment_logits = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [-1.0, 1.0], [4.0, -4.0]])
    segment_clip = np.array([0, 0, 1, 1, 2])
    expected = np.array([[2.0, 1.0], [-0.5, 3.0], [4.0, -4.0]])  # by hand
    np.testing.assert_allclose(linear.clip_logits(segment_logits, segment_clip, 3), expected)
    # clip 1's mean favours class 1 although its first segment's did not... and accuracy reads the mean
    assert linear.accuracy(expected, np.array([0, 1, 0])) == 1.0
    assert linear.accuracy(expected, np.array([1, 1, 1])) == pytest.approx(1 / 3)


def test_clip_without_segments_is_an_error():
    with pytest.raises(ValueError, match="no segment"):
        linear.clip_logits(np.zeros((2, 2)), np.array([0, 0]), 2)


def test_average_precision_hand_computed():
    # ranks 1..4: hit, miss, hit, miss -> precision at the hits 1/1 and 2/3
    assert linear.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    # a tie between a hit and a miss is one threshold: P=1/2 at R=1/2, then P=2/3 at R=1
    assert linear.average_precision([0.5, 0.5, 0.1], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert linear.average_precision([0.5, 0.5, 0.1], [0, 1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert np.isnan(linear.average_precision([0.3, 0.2], [0, 0]))


def test_mean_average_precision_skips_classes_without_positives():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.7, 0.6, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    # class 0: hit at rank 1 -> 1; class 1: hits at ranks 1 and 2 -> 1; class 2: no positives, skipped
    assert linear.mean_average_precision(scores, targets) == pytest.approx(1.0)
    targets = np.array([[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    # class 0: its one hit is ranked 3rd -> 1/3; class 1: ranks 1, 2 -> 1
    assert linear.mean_average_precision(scores, targets) == pytest.approx((1 / 3 + 1) / 2)


@pytest.mark.parametrize("examples, batch, epochs, min_steps, expected_epochs", [
    (85_000, 512, 50, 2000, 50),   # speech_commands-sized: 167 steps per epoch, 50 epochs are 8,350 steps
    (1540, 512, 50, 2000, 500),    # demo keyword: 4 steps per epoch
    (1540, 512, 50, 2001, 501),    # the last epoch is completed, not cut
    (1540, 512, 50, 0, 50),        # no floor: the recipe's epochs
    (100, 512, 3, 10, 10),         # batch larger than the data: one step per epoch
])
def test_probe_recipe_adds_epochs_only_below_its_step_floor(examples, batch, epochs, min_steps, expected_epochs):
    recipe = linear.ProbeRecipe(epochs=epochs, batch_size=batch, min_steps=min_steps)
    assert recipe.epochs_for(examples) == expected_epochs
    indices, weights = linear._epoch_batches(examples, recipe, seed=0)
    steps_per_epoch = math.ceil(examples / min(batch, examples))
    assert indices.shape[0] == expected_epochs * steps_per_epoch >= min_steps
    # every epoch is one pass: each example has weight 1 exactly once per epoch
    per_epoch = indices.reshape(expected_epochs, -1), weights.reshape(expected_epochs, -1)
    for epoch_indices, epoch_weights in zip(*per_epoch):
        assert sorted(epoch_indices[epoch_weights == 1].tolist()) == list(range(examples))


def test_linear_head_separates_separable_classes_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 3
    labels = np.repeat(np.arange(3), 40)
    features = (centres[labels] + rng.normal(size=(120, 16))).astype(np.float32)
    one_hot = np.eye(3, dtype=np.float32)
    recipe = linear.ProbeRecipe(epochs=100, batch_size=32)
    head = linear.train_linear_probe(features[::2], one_hot[labels[::2]], multi_label=False, seed=0, recipe=recipe)
    assert linear.accuracy(head.logits(features[1::2]), labels[1::2]) > 0.95
    shuffled = rng.permutation(labels[::2])
    head = linear.train_linear_probe(features[::2], one_hot[shuffled], multi_label=False, seed=0, recipe=recipe)
    assert linear.accuracy(head.logits(features[1::2]), labels[1::2]) < 0.7


def test_multi_label_head_learns_independent_labels():
    rng = np.random.default_rng(1)
    targets = (rng.random((200, 3)) < 0.4).astype(np.float32)
    features = (targets @ rng.normal(size=(3, 8)) * 2 + rng.normal(size=(200, 8)) * 0.3).astype(np.float32)
    head = linear.train_linear_probe(features[:150], targets[:150], multi_label=True, seed=0,
                                     recipe=linear.ProbeRecipe(epochs=200, batch_size=64))
    assert linear.mean_average_precision(head.logits(features[150:]), targets[150:]) > 0.9


def test_participation_ratio_counts_the_directions_the_data_spans():
    rng = np.random.default_rng(0)
    isotropic = rng.normal(size=(20000, 8))
    assert linear.participation_ratio(isotropic) == pytest.approx(8, rel=0.02)
    # Three independent directions embedded in 16 dimensions, each copied into several
    # features: after standardisation each copy has unit variance, so the eigenvalues are the
    # group sizes 8, 4, 4 and the ratio is 16^2 / (64 + 16 + 16).
    sources = rng.normal(size=(20000, 3))
    copies = np.concatenate([np.repeat(sources[:, :1], 8, axis=1), np.repeat(sources[:, 1:], 4, axis=1)], axis=1)
    assert linear.participation_ratio(copies) == pytest.approx(256 / 96, rel=0.02)
    # a constant feature adds nothing
    with_constant = np.concatenate([isotropic, np.ones((20000, 1))], axis=1)
    assert linear.participation_ratio(with_constant) == pytest.approx(8, rel=0.02)
