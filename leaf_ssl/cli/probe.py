"""`python -m leaf_ssl.probe`: linear probes of a pretrained (or untrained) frontend + encoder.

    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task keyword --data_dir demo_corpus
    python -m leaf_ssl.probe --ckpt random:configs/demo.py:leaf,random --task demo:demo_corpus/keyword
    python -m leaf_ssl.probe --ckpt runs/leaf/checkpoints/50000 --task speech_commands --tfds_data_dir ~/tfds
    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task folder:/data/my_sounds --seeds 5
    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task keyword --data_dir demo_corpus --features frontend

1. Restores the checkpoint's params and batch statistics and rebuilds its model from the saved
   config (`leaf_ssl.inference.frozen_model`); `random:<config>` is the same architecture untrained.
2. Embeds every clip once, frozen and in inference mode, as segments of the model's training crop
   length (`FrozenModel.window_samples`; `--segment_seconds` overrides) (`inference.windows`,
   `evaluation.cache`); embeddings are cached in `<workdir>/embeddings/`. `--features frontend`
   reads the frontend alone instead: each channel's mean and std over the segment's frames.
3. Per seed, trains a linear head on the train segments and scores the test clips by the mean
   of their segments' logits (`evaluation.linear`): accuracy, or mAP for multi-label tasks.
4. Prints and writes `<workdir>/<task>.json` and `<task>.md`: mean +/- sample std over seeds,
   per-seed values, clip/segment counts and every skipped file with its reason.

`--workdir` defaults to `probes/<run name>` in the current folder, or `probes/random_<config>` for
`random:` (with `_bn` and `_frontend` appended for those variants): a probe writes into the run it
reads only when asked, with `--tensorboard`.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from leaf_ssl.cli import config_overrides, exits, quiet
from leaf_ssl.inference.features import FEATURES
from leaf_ssl.inference.windows import NonFiniteFeatures
from leaf_ssl.evaluation import batch_norm, evaluators, linear, probe, tasks
from leaf_ssl.training.checkpointing import CheckpointError

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.probe", description=__doc__.split("\n\n")[0],
                                     epilog=config_overrides.EPILOG)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--ckpt", required=True, help="run workdir, its checkpoints/ folder, a step folder, "
                                                      "or random:<config file>[:<args>]")
    parser.add_argument("--task", required=True, action="append",
                        help="demo:<corpus>/<task>, folder:<dir>, csv:<file>, a TFDS task "
                             f"{sorted(tasks.TFDS_TASKS)}, or a demo task with --data_dir; repeat it to probe "
                             "several tasks with one loaded (and compiled) model")
    parser.add_argument("--workdir", help="results and embedding cache (default: <run>/probes, or "
                                          "<run>/probes_bn with --bn_batches)")
    parser.add_argument("--data_dir", help="demo corpus folder, for bare demo task names")
    parser.add_argument("--tfds_data_dir", help="TFDS data_dir holding prepared datasets")
    parser.add_argument("--evaluator", choices=list(evaluators.EVALUATORS), default="linear",
                        help="linear: the paper's probe (default); knn: k nearest train segments by cosine "
                             "similarity, no training; fewshot: linear heads on --shots train clips per class")
    parser.add_argument("--seeds", type=int, default=3, help="linear heads trained, seeds 0..n-1 (linear, fewshot)")
    parser.add_argument("--k", type=int, default=evaluators.NearestNeighbours.k, help="knn: neighbours that vote")
    parser.add_argument("--shots", type=int, default=evaluators.FewShotLinear.shots,
                        help="fewshot: train clips per class, drawn per seed")
    parser.add_argument("--epochs", type=int, default=linear.ProbeRecipe.epochs,
                        help="passes over the train segments (more if fewer than --min_steps steps)")
    parser.add_argument("--min_steps", type=int, default=linear.ProbeRecipe.min_steps,
                        help="fewest optimizer steps of a head: small tasks get more epochs (0: exactly --epochs)")
    parser.add_argument("--batch", type=int, default=linear.ProbeRecipe.batch_size, help="segments per head step")
    parser.add_argument("--learning_rate", type=float, default=linear.ProbeRecipe.learning_rate)
    parser.add_argument("--embed_batch", type=int, default=64, help="segments per embedding call")
    parser.add_argument("--segment_seconds", type=float,
                        help="segment length (default: the checkpoint's training crop, config.data.crop_seconds)")
    parser.add_argument("--features", choices=list(FEATURES), default="encoder",
                        help="what the head reads: the pooled encoder output (default, the paper's probe), or "
                             "'frontend': each frontend channel's mean and std over the segment (no encoder)")
    parser.add_argument("--bn_batches", type=int, default=0,
                        help="re-estimate BatchNorm statistics from this many batches of the model's training data "
                             "before embedding (evaluation.batch_norm); 0 keeps the checkpoint's (default)")
    parser.add_argument("--bn_batch", type=int, default=64, help="crops per re-estimation batch")
    parser.add_argument("--bn_data", help="shards to re-estimate from (default: the config's data.train_shards)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also add the scores to the run's TensorBoard events (<run>/tensorboard), at the "
                             "checkpoint's step: the one way a probe writes into the run it reads")
    args, args.config_overrides = config_overrides.parse_args_and_overrides(parser, argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.bn_batches and args.features == "frontend":
        exits.usage_error("--bn_batches has no effect with --features frontend: the frontend has no BatchNorm")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs several INFO lines per restore
    try:
        # every task is resolved before any work, so a typo in the last one costs nothing
        task_list = [tasks.resolve_task(spec, data_dir=args.data_dir, tfds_data_dir=args.tfds_data_dir)
                     for spec in args.task]
        frozen = config_overrides.load_model(args.ckpt, args.config_overrides)
    except (tasks.TaskError, CheckpointError) as error:
        exits.usage_error(str(error))
    if args.bn_batches:
        try:
            frozen = batch_norm.reestimate(frozen, num_batches=args.bn_batches, batch_size=args.bn_batch,
                                           train_shards=args.bn_data)
        except (OSError, ValueError) as error:
            exits.failure(f"cannot re-estimate BatchNorm statistics (--bn_batches): {error}")
    workdir = Path(args.workdir) if args.workdir else probe.default_workdir(frozen, bn_reestimated=bool(args.bn_batches),
                                                                                  features=args.features)
    recipe = linear.ProbeRecipe(epochs=args.epochs, batch_size=args.batch, learning_rate=args.learning_rate,
                                min_steps=args.min_steps)
    evaluator = evaluators.make_evaluator(args.evaluator, seeds=args.seeds, recipe=recipe, k=args.k, shots=args.shots)
    for task in task_list:
        logger.info("probing %s (step %d) on %s; results in %s", frozen.source, frozen.step, task.spec, workdir)
        try:
            result = probe.run_probe(frozen, task, workdir, evaluator=evaluator,
                                     segment_seconds=args.segment_seconds, embed_batch=args.embed_batch,
                                     features=args.features, tensorboard=args.tensorboard)
        except NonFiniteFeatures as error:
            exits.failure(f"{frozen.source} on {task.spec}: {error}")
        except tasks.TaskError as error:
            exits.usage_error(str(error))
        print(probe.format_markdown(result))
        print(f"written: {workdir / (probe.result_name(task.name, evaluator.name) + '.json')} and .md")


if __name__ == "__main__":
    main()
