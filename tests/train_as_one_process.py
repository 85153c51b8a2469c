"""`python -m leaf_ssl.train` in ONE process, fed the global batches that N processes would read.

    python tests/train_as_one_process.py --emulated_processes 2 --config configs/tiny.py --workdir ...

An N-process run's global batch is the concatenation, in process order, of each process's
stream (`pretraining_dataset(process_index=i, process_count=N)`). Feeding that concatenation to
a single process with the same total device count must give the same losses and parameters:
the reference the multi-process test compares against (tests/test_multiprocess.py).
"""
import sys

import numpy as np
from absl import app, flags

from leaf_ssl.cli import train as train_command
from leaf_ssl.data import pipeline

_EMULATED = flags.DEFINE_integer("emulated_processes", 2, "Processes whose data streams are concatenated.")


class _ConcatenatedStreams:
    def __init__(self, streams):
        self.streams = streams

    def __iter__(self):
        return self

    def __next__(self):
        parts = [next(stream) for stream in self.streams]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _emulated_input_batches(config, *, per_process_batch, crop_samples, start_batch):
    count = _EMULATED.value
    return _ConcatenatedStreams([
        pipeline.pretraining_dataset(
            config.data.train_shards, per_process_batch=per_process_batch // count, crop_samples=crop_samples,
            seed=config.seed, noise_std=config.data.noise_std, shuffle_buffer=config.data.shuffle_buffer,
            start_batch=start_batch, process_index=index, process_count=count)
        for index in range(count)])


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    sys.exit(app.run(lambda argv: train_command.main(argv, batches=_emulated_input_batches),
                     flags_parser=train_command.parse_flags))
