"""The training input of a config: this process's stream of batches, the objective's own."""
import ml_collections

from leaf_ssl.model.objectives import objective_of


def input_batches(config: ml_collections.ConfigDict, *, per_process_batch: int, crop_samples: int,
                  start_batch: int):
    """This process's stream of batches from batch `start_batch` on (`Objective.input_stream`):
    (anchor, positive) pairs, or labelled crops for a supervised config."""
    return objective_of(config).input_stream(config, per_process_batch=per_process_batch,
                                             crop_samples=crop_samples, start_batch=start_batch)
