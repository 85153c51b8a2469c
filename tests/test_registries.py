"""The registries (frontends, objectives, filter analyses) are complete, and a new entry in each is
all a new frontend or objective needs: a toy of each, registered here, trains one step."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.frontends import FRONTENDS, factory, inspect, make_frontend, register_frontend
from leaf_ssl.model import configuration, objectives, validation
from leaf_ssl.training import loop
from tests.tensorboard_events import read_events
from tests.tiny_config import tiny_config


def test_every_registered_frontend_is_a_config_choice_builds_and_is_described():
    assert set(configuration.frontend_choices()) == set(FRONTENDS) and configuration.frontend_choices()[0] == "leaf"
    for name in FRONTENDS:
        fields = configuration.frontend_config(name, n_filters=8, init="mel")
        assert isinstance(make_frontend(fields), FRONTENDS[name])
        assert set(factory.compute_path_fields(name)) <= set(fields), "every compute path is a config field"
        assert inspect.can_describe(fields), f"the built-in frontend {name} has a filter analysis"


def test_every_registered_objective_names_itself_and_its_schema_validates():
    for name, objective in objectives.OBJECTIVES.items():
        schema = objective.schema()
        assert objectives.objective_of(schema) is objective
        assert objective.crops_per_example >= 1 and objective.crop_key and objective.training_label
        schema.data.train_shards = "shards"
        if "supervised" in schema:
            schema.supervised.task_dir = "task"
        validation.validate_config(schema, num_devices=8)


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="'mel' is registered already"):
        register_frontend("mel", nn.Dense)
    with pytest.raises(ValueError, match="'cola' is registered already"):
        objectives.register_objective(objectives.OBJECTIVES["cola"])


class FramedEnergy(nn.Module):
    """A toy frontend: 10 ms frames, a learnt projection to `n_filters` channels, log energy."""
    n_filters: int = 8
    frame: int = 160

    @nn.compact
    def __call__(self, waveform):
        frames = waveform[:, : waveform.shape[1] // self.frame * self.frame].reshape(
            waveform.shape[0], -1, self.frame)
        return jnp.log1p(nn.Dense(self.n_filters, use_bias=False)(frames) ** 2)


class LoudnessModel(nn.Module):
    """A toy objective's model: the frontend, pooled over time, regressed onto each crop's loudness."""
    frontend: nn.Module
    waveform_args = 1

    @nn.compact
    def __call__(self, waveform, train: bool = False):
        return nn.Dense(1)(jnp.mean(self.frontend(waveform), axis=1))[:, 0]


def _loudness_loss(config, negatives_axis):
    def objective(model, variables, batch, rngs):
        predicted = model.apply(variables, batch["audio"], train=True)
        loss = jnp.mean((predicted - batch["loudness"]) ** 2)
        return loss, ({"batch_stats": {}}, jnp.mean(jnp.abs(predicted - batch["loudness"]) < 0.1))
    return objective


def _loudness_schema():
    config = configuration.pretraining_config()
    config.objective = "loudness"
    return config


def _loudness_stream(config, *, per_process_batch, crop_samples, start_batch):
    rng = np.random.default_rng(config.seed + start_batch)
    while True:
        gain = rng.uniform(0.01, 1.0, per_process_batch).astype(np.float32)
        audio = gain[:, None] * rng.standard_normal((per_process_batch, crop_samples)).astype(np.float32)
        yield {"audio": audio, "loudness": np.log(gain)}


@pytest.fixture
def toy_registrations():
    register_frontend("framed_energy", FramedEnergy)
    objectives.register_objective(objectives.Objective(
        "loudness", "loudness regression", "audio", 1, _loudness_schema,
        lambda config, frontend, encoder, masks: LoudnessModel(frontend=frontend), _loudness_loss,
        _loudness_stream))
    yield
    for registry in (factory._CLASSES, factory._CHOICES, factory._PRESETS):
        registry.pop("framed_energy")
    objectives.OBJECTIVES.pop("loudness")


def test_a_toy_frontend_and_objective_train_one_step_from_their_registry_entries_alone(toy_registrations, tmp_path):
    config = tiny_config("framed_energy,loudness")
    assert config.objective == "loudness" and config.frontend.name == "framed_energy"
    config.frontend = {"name": "framed_energy", "n_filters": 8}  # it has no `init` to choose
    config.data.train_shards = "synthetic"  # never read: the objective's own stream feeds the step
    config.data.num_clips = 64
    config.train.total_steps = 1
    history = loop.run(config, tmp_path / "run")
    assert [record["step"] for record in history] == [1] and np.isfinite(history[0]["loss"])
    assert (tmp_path / "run" / "checkpoints" / "1").is_dir()
    # No filter analysis for this frontend: TensorBoard gets its chirp image and no filter figures.
    _, images, _ = read_events(tmp_path / "run" / "tensorboard")
    assert "frontend/chirp" in images and not any(tag.startswith("filters/") for tag in images)
