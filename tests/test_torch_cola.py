"""The learning-parity peer (`leaf_ssl.bench.torch_cola`) against this package's Flax modules, written
independently: the same log-mel features, the same EfficientNet shapes, the same schedule; and
the learning benchmark end to end on a tiny mel run."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from leaf_ssl.cli import bench as bench_command
from leaf_ssl.bench import learning, torch_cola
from leaf_ssl.encoders.efficientnet import EfficientNet
from leaf_ssl.frontends.mel import MelFilterbank
from leaf_ssl.training import loop
from tests.tiny_config import tiny_config


@pytest.mark.parametrize("preset, samples", [("leaf", 15360), ("cola", 4001)])
def test_log_mel_matches_the_flax_mel_filterbank(preset, samples):
    waveform = np.random.default_rng(0).normal(scale=0.05, size=(3, samples)).astype(np.float32)
    ours = MelFilterbank.from_preset(preset)
    expected = np.asarray(ours.apply({}, jnp.asarray(waveform)))
    peer = torch_cola.log_mel(torch.tensor(waveform), n_filters=ours.n_filters, n_fft=ours.n_fft).numpy()
    assert peer.shape == expected.shape
    np.testing.assert_allclose(peer, expected, atol=2e-4)


@pytest.mark.parametrize("width, depth", [(1.0, 1.0), (0.25, 0.34)])
def test_efficientnet_has_the_flax_encoder_s_parameters_and_output(width, depth):
    torch.manual_seed(0)
    peer = torch_cola.EfficientNet(width, depth)
    features = (3, 96, 40)
    ours = EfficientNet(width_mult=width, depth_mult=depth)
    shapes = jax.eval_shape(lambda: ours.init(jax.random.key(0), jnp.zeros(features), train=False))["params"]
    assert sum(p.numel() for p in peer.parameters()) == sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
    assert peer.eval()(torch.zeros(features)).shape == (3, ours.output_dim)
    # He-normal over fan-out (k*k*out, or k*k for a depthwise kernel): every kernel scaled by
    # sqrt(fan_out / 2) has unit variance; pooled over all convolutions, not one small stem.
    scaled = []
    for conv in (m for m in peer.modules() if isinstance(m, torch.nn.Conv2d)):
        out, _, k, _ = conv.weight.shape
        fan_out = k * k * (1 if conv.groups > 1 else out)
        scaled.append(conv.weight.detach().flatten() * math.sqrt(fan_out / 2))
    assert float(torch.cat(scaled).var()) == pytest.approx(1.0, rel=0.05)


def test_schedule_is_the_trainer_s():
    model = torch_cola.Cola(width=0.25, depth=0.34)
    trainer = torch_cola.Trainer(model, peak_rate=1e-3, warmup_steps=10, total_steps=50, weight_decay=1e-6, seed=0)
    ours = optax.warmup_cosine_decay_schedule(0.0, 1e-3, warmup_steps=10, decay_steps=50, end_value=0.0)
    for step in (0, 3, 10, 27, 49, 50):
        assert trainer.rate(step) == pytest.approx(float(ours(step)), abs=1e-9)


def test_spec_augment_masks_bands_of_at_most_the_width():
    generator = torch.Generator().manual_seed(0)
    masked = torch_cola.spec_augment(torch.ones(200, 30, 40), 2, 5, 2, generator)
    hidden = (masked == 0).all(dim=1)  # channels hidden in every frame, per example
    assert bool((hidden.sum(dim=1) <= 10).all()) and bool((hidden.sum(dim=1) > 0).any())
    assert bool(((masked == 0) == hidden[:, None, :]).all()), "a channel mask spans all frames"


@pytest.mark.slow
def test_learning_benchmark_trains_the_peer_on_the_run_s_batches(tiny_corpus, tmp_path, capsys):
    config = tiny_config("mel")
    config.data.train_shards = str(tiny_corpus / "pretrain")
    config.train.total_steps = 4
    run = tmp_path / "run"
    loop.run(config, run)
    bench_command.main(["--what", "learning", "--peer", "torch", "--run", str(run), "--tasks", "keyword",
                "--data_dir", str(tiny_corpus), "--probe_seeds", "2", "--json", str(tmp_path / "out.json")])
    rows = {row["measure"]: row for row in json.loads((tmp_path / "out.json").read_text())["rows"]}
    ours_metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [f"accuracy @ step {r['step']}" for r in ours_metrics] == [m for m in rows if m.startswith("accuracy")]
    assert float(rows["loss @ step 4"]["ours"]) == pytest.approx(ours_metrics[-1]["loss"], abs=5e-4)
    peer_metrics = [json.loads(line) for line in (run / "peer_torch" / "metrics.jsonl").read_text().splitlines()]
    # 16 pairs: a loss near ln 16 at the start, and finite throughout
    assert abs(peer_metrics[0]["loss"] - math.log(16)) < 2 and all(math.isfinite(r["loss"]) for r in peer_metrics)
    peer_probe = json.loads((run / "peer_torch" / "probes" / "keyword.json").read_text())
    assert len(peer_probe["per_seed"]) == 2 and 0 <= peer_probe["mean"] <= 1
    assert "probe keyword (accuracy)" in capsys.readouterr().out


def test_learning_benchmark_refuses_a_frontend_the_peer_lacks(tmp_path):
    config = tiny_config("leaf")
    with pytest.raises(ValueError, match="log-mel features only; this run's frontend is 'leaf'"):
        learning.peer_settings(config)
