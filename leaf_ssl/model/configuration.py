"""The pretraining configuration: every field and its default (the paper recipe).

Config files in `configs/` start from `pretraining_config()` and change what differs, so
every field is documented once, here. `validation.validate_config` checks a config before
anything is compiled and names the offending field and what it accepts.
"""
import ml_collections

from leaf_ssl.frontends import factory as frontend_factory

ENCODER_DTYPES = ("float32", "bfloat16")


class ConfigError(ValueError):
    """A config field that is unknown, of the wrong type, out of range or not finite; the
    message names the field."""

NEGATIVES = ("local", "global")
BATCH_NORM_MODES = ("sync", "per_device")


def pretraining_config() -> ml_collections.ConfigDict:
    """COLA pretraining as the first author's public recipe runs it (every default: the README's config reference)."""
    config = ml_collections.ConfigDict()
    # What the run trains for, by name (leaf_ssl/model/objectives.py: OBJECTIVES): cola (self-supervised
    # pairs, this config) | supervised (a labelled task: `supervised_config`, which sets it).
    config.objective = "cola"
    # PRNG seed for parameter init, data order, crops, noise, SpecAugment masks and drop-path.
    config.seed = 0

    # Audio frontend: `name` picks the module (leaf | sincnet | sincnet_plus | mel); every other
    # field is a constructor argument of that module (see leaf_ssl/frontends).
    config.frontend = ml_collections.ConfigDict(frontend_config("leaf", n_filters=40, init="mel"))

    config.encoder = encoder_config("efficientnet_b0")

    config.model = ml_collections.ConfigDict()
    config.model.embedding_dim = 512      # Dense width of the projection head.
    config.model.projection_head = "cola" # cola (Dense, LayerNorm, tanh) | mlp (+ ReLU, Dense; 'dot' only).
    config.model.similarity = "bilinear"  # bilinear (COLA, no temperature) | dot (cosine / temperature).
    config.model.temperature = 0.1        # Only for similarity='dot'.
    # local: each device's own pairs are the negatives (COLA, first author's code).
    # global: positives are all-gathered, every anchor meets the whole global batch.
    config.model.negatives = "local"
    config.model.freq_masks = 2           # SpecAugment on positives: number of channel bands...
    config.model.freq_mask_width = 10     # ...each at most this many channels wide.
    config.model.time_masks = 2           # Number of frame bands...
    config.model.time_mask_width = 10     # ...each at most this many frames wide.
    # Recompute the frontend's activations in the backward pass instead of keeping them: its
    # full-rate filter outputs are most of the step's memory. Same results, less memory.
    config.model.remat_frontend = False

    config.data = ml_collections.ConfigDict()
    config.data.train_shards = ""         # Folder or glob of pretraining TFRecord shards (gs:// works).
    config.data.sample_rate = 16000       # Rate of the shards' PCM; crops are taken at this rate.
    config.data.crop_seconds = 0.96       # Length of each anchor / positive crop.
    config.data.noise_std = 0.001         # Gaussian noise added to the (L2-normalised) positive.
    config.data.shuffle_buffer = 4096     # Clips in the per-process shuffle buffer (tf_data reader).
    # auto: tf.data where TensorFlow imports and the shards are PCM; in_memory otherwise (this process's
    # shards decoded into host memory once: no TensorFlow needed, FLAC/Opus shards read). tf_data | in_memory.
    config.data.reader = "auto"
    config.data.num_clips = 0             # Clips per epoch; 0 counts the shards' records at start.

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 2048        # Global pairs per step (256 per device on 8 devices).
    config.train.num_epochs = 50.0        # Length in epochs of num_clips...
    config.train.total_steps = 0          # ...unless positive: then exactly this many steps.
    config.train.warmup_epochs = 5.0      # Linear warm-up, then cosine decay to 0.
    config.train.base_learning_rate = 5e-4  # Peak lr = this * batch_size / 256.
    config.train.weight_decay = 1e-6      # AdamW decoupled weight decay.
    # sync: BatchNorm statistics over the global batch (mean over devices);
    # per_device: each device normalises by its own batch, running averages then averaged.
    config.train.batch_norm = "sync"
    config.train.log_every_steps = 50     # Loss / lr / throughput / ETA lines and TensorBoard.
    # TensorBoard events in <workdir>/tensorboard (training/summaries.py): hparams, the log
    # records, the frontend's filters and its output for a chirp every 20 log lines; metrics.jsonl
    # is written either way.
    config.train.tensorboard = True
    config.train.checkpoint_every_steps = 1000  # Also saved at the end and on preemption.
    config.train.keep_checkpoints = 3     # Most recent checkpoints kept in the workdir.
    # A step whose loss or gradient is not finite is not applied (and counted). This many in a
    # row stop the run (checked at each log line, so up to log_every_steps later); 0 never stops.
    config.train.max_consecutive_nonfinite = 10
    # With several processes, how often they agree on whether one of them got SIGTERM (one
    # tiny all-gather, which waits for the step); a lone process checks every step for free.
    # The stop then comes at most this many steps after the signal.
    config.train.stop_check_every_steps = 10

    # Evaluations of the live parameters while the run trains (leaf_ssl/evaluation/during_training.py),
    # at step 0, every `every_steps` and at the end, written as eval/<task>/<evaluator>/<metric> to
    # metrics.jsonl and TensorBoard: dicts {"evaluator": linear | knn | fewshot, "task": as the probe's
    # --task, "every_steps": N, "data_dir": the demo corpus of a bare demo task name (optional; default:
    # the corpus of data.train_shards)}.
    config.evals = ()
    return config


def supervised_config() -> ml_collections.ConfigDict:
    """The supervised baseline: `pretraining_config()` plus a `supervised` section.

    The model is frontend + encoder + Dense(classes) (leaf_ssl/model/supervised.py), trained with the
    same step, optimizer and schedule fields; `model.embedding_dim`, `similarity`,
    `temperature`, `negatives` and `data.noise_std` are unused. SpecAugment (`model.*_mask*`)
    applies to every training crop.
    """
    config = pretraining_config()
    config.objective = "supervised"
    config.supervised = ml_collections.ConfigDict()
    # A labelled task folder: task.json (classes, multi_label) and train-*.tfrecord shards, as
    # the demo corpus's tasks/<task>/ and the output of `python -m leaf_ssl.data.audioset`.
    # data.train_shards, when empty, becomes <task_dir>/train-*.tfrecord.
    config.supervised.task_dir = ""
    # Read from task.json when the run starts and saved with the run's config (so the probe
    # rebuilds the model without the task); leave them at 0 / False.
    config.supervised.num_classes = 0
    config.supervised.multi_label = False
    return config


def supervised_recipe() -> ml_collections.ConfigDict:
    """Our supervised recipe (the paper does not publish one; LEAF's supervised training is the
    model): Adam-style AdamW at 1e-4 for a 256-clip batch, 1 warm-up epoch then cosine, 30 epochs
    of the task's training clips, 0.96 s crops, SpecAugment as in pretraining."""
    config = supervised_config()
    config.train.batch_size = 256
    config.train.base_learning_rate = 1e-4
    config.train.num_epochs = 30.0
    config.train.warmup_epochs = 1.0
    return config


def frontend_choices() -> tuple[str, ...]:
    """Every registered frontend, LEAF first: a config file's `frontend` argument and its default."""
    return ("leaf", *(name for name in frontend_factory.FRONTENDS if name != "leaf"))


def frontend_config(frontend: str, *, n_filters: int, init: str) -> dict:
    """`config.frontend` for a config file's frontend choice: the fixed mel filterbank with LEAF's
    settings, or a learnable frontend of `n_filters` with its initialisation.

    The compute paths the frontend offers are spelled out ('auto'), so that the documented
    `--config.frontend.filterbank_impl=...` / `pooling_impl=...` overrides exist on every config."""
    if frontend == "mel":
        return {"name": "mel", "preset": "leaf"}
    return {"name": frontend, "n_filters": n_filters, "init": init,
            **{field: "auto" for field in frontend_factory.compute_path_fields(frontend)}}


def with_readers_compute_paths(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A saved run's config with its compute paths (`frontend.*_impl`, `encoder.depthwise_impl`) set to
    'auto', for a reader on another backend: the paths give the same numbers to float32 rounding, and
    the writer's choice may not run here (a TPU run's 'fused' filterbank is refused on GPUs)."""
    config = ml_collections.ConfigDict(config.to_dict())
    for field in frontend_factory.compute_path_fields(config.frontend.get("name")):
        if field in config.frontend:
            config.frontend[field] = "auto"
    if "depthwise_impl" in config.get("encoder", {}):
        config.encoder.depthwise_impl = "auto"
    return config


def encoder_config(name: str, **fields) -> ml_collections.ConfigDict:
    """`config.encoder`: `name` (efficientnet_b0 | efficientnet_tiny) picks a preset; every other
    field is a constructor argument, present in every config so that each can be overridden.

    width_mult / depth_mult: None keeps the preset's (B0: 1.0 / 1.0). drop_path_rate: stochastic
    depth of the last block. pooling: global pooling, max (COLA) or avg. bn_momentum: decay of
    BatchNorm's running averages. dtype: the encoder's compute dtype (float32 | bfloat16); the
    frontend and the loss always run in float32. depthwise_impl: the depthwise convolutions' path
    (auto | conv | shifts; same results, auto picks by backend).
    """
    config = ml_collections.ConfigDict({
        "name": name, "dtype": "float32",
        "width_mult": ml_collections.config_dict.placeholder(float),
        "depth_mult": ml_collections.config_dict.placeholder(float),
        "drop_path_rate": 0.2, "pooling": "max", "bn_momentum": 0.99, "depthwise_impl": "auto"})
    config.update(fields)
    return config


def demo_scale(config: ml_collections.ConfigDict, config_file: str, arg: str | None) -> ml_collections.ConfigDict:
    """`config` at CPU size (configs/demo.py, demo_supervised.py), for the frontend of the
    file's `frontend[,init]` argument: 40 filters, 240 steps of 16, the demo corpus's sizes."""
    options = parse_config_arg(arg, config_file, {"frontend": frontend_choices(), "init": FRONTEND_INITS})
    config.frontend = frontend_config(options["frontend"], n_filters=40, init=options["init"])
    config.data.shuffle_buffer = 1024
    # A few hundred steps: BatchNorm's running averages must forget their initial values
    # (0.99**240 = 9% would remain), since probes run the encoder in inference mode.
    config.encoder.bn_momentum = 0.95
    # Sized for two CPU cores (the demo config raises the batch; docs/results.md has the timings).
    config.train.batch_size = 16
    config.train.total_steps = 240
    config.train.warmup_epochs = 0.25
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 80
    return config


def objective(config: ml_collections.ConfigDict) -> str:
    """The name of the objective `config` trains for: its `objective` field. Configs saved before
    that field existed (a run's config.json) are told apart by their `supervised` section."""
    if "objective" in config:
        return config.objective
    return "supervised" if "supervised" in config else "cola"


FRONTEND_INITS = ("mel", "random")


def parse_config_arg(arg: str | None, config_file: str, allowed: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Parses a config file's ':a,b' argument against named choices, in order.

    `allowed` maps each positional option to its choices; the first choice is the default.
    E.g. parse_config_arg('random', 'pretrain_leaf.py', {'init': ('mel', 'random')}).
    """
    values = [v for v in (arg or "").split(",") if v]
    if len(values) > len(allowed):
        raise ConfigError(f"{config_file} takes at most {len(allowed)} argument(s) {list(allowed)}, got {arg!r}")
    parsed = {}
    for index, (name, choices) in enumerate(allowed.items()):
        value = values[index] if index < len(values) else choices[0]
        if value not in choices:
            raise ConfigError(f"{config_file}: {name}={value!r} is not valid; choose one of {list(choices)}")
        parsed[name] = value
    return parsed
