"""Linear probing of pretrained encoders: the pieces behind `python -m leaf_ssl.probe`.

* `checkpoint`: restores a frozen frontend + encoder (or the untrained floor) from a run.
* `tasks`: the task registry (demo corpus, audio folders and CSVs, TFDS datasets).
* `segments`: cuts clips into the fixed-length segments that are embedded.
* `embedding`: embeds every segment once, jitted and batched, cached on disk.
* `linear`: the linear classifier, segment-averaged evaluation, accuracy and mAP.
"""
