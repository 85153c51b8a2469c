"""A corpus rewritten with compressed audio: every shard of a folder tree, its records re-encoded as FLAC
(lossless) or Opus (lossy, `records.OPUS_KBIT_PER_S`), and its JSON files (corpus.json, each task.json)
copied; nothing else (a demo corpus's package cache is 1.9 GB of build inputs).

    python -m leaf_ssl.data.pack --src demo_corpus --out demo_corpus_opus --encoding opus

Shard names, record order, ids, labels and ``.count`` sidecars are kept, so a compressed corpus stands in
for its source wherever shards are read into memory (`leaf_ssl.data.in_memory`, and the probes, which
read clips one by one). Its use: a corpus small enough to travel with a job to a machine without network.
A record that does not parse is not written and is counted (the sidecar then counts the records written).
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
from collections import Counter
from pathlib import Path

from leaf_ssl.data import records
from leaf_ssl.progress import ProgressLine


def pack_shard(source: str, target: str, encoding: str) -> tuple[int, Counter[str]]:
    """Re-encodes one shard; returns (records written, records skipped by reason)."""
    import tensorflow as tf  # the shard writer

    skipped: Counter[str] = Counter()
    written = 0
    partial = target + ".partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for index, serialized in records.shard_records(source, skipped):
            try:
                samples, clip_id, labels = records.parse_record(serialized)
                writer.write(records.serialize_clip(clip_id, samples, labels, encoding))
            except (records.CorruptRecordError, ValueError) as error:
                records.count_skip(skipped, str(error), source, index)
                continue
            written += 1
    os.replace(partial, target)
    records.write_record_count(target, written)
    return written, skipped


def pack_corpus(source: str | os.PathLike, out: str | os.PathLike, encoding: str, workers: int | None = None,
                progress: bool = True) -> dict:
    """Writes `source`'s tree to `out` with every shard re-encoded; returns a report (counts, bytes)."""
    if encoding not in records.ENCODINGS or encoding == records.PCM:
        raise ValueError(f"encoding {encoding!r} is not a compressed one: {[e for e in records.ENCODINGS if e != 'pcm']}")
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise FileNotFoundError(f"no corpus folder at {source}")
    shards, others = [], []
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.endswith(".partial"):
            (shards if path.suffix == records.SHARD_SUFFIX else others).append(path)
    others = [path for path in others if path.suffix == ".json"]
    for path in others:
        (out / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / path.relative_to(source))
    line = ProgressLine(f"packing {source} as {encoding}", len(shards), "shards", enabled=progress)
    written, skipped = 0, Counter()
    with concurrent.futures.ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        jobs = []
        for path in shards:
            target = out / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            jobs.append(pool.submit(pack_shard, str(path), str(target), encoding))
        for done, job in enumerate(concurrent.futures.as_completed(jobs), 1):
            count, shard_skips = job.result()
            written += count
            skipped.update(shard_skips)
            line.update(done, f"{written} clips")
    line.finish(len(shards), f"{written} clips")
    packed = [out / path.relative_to(source) for path in shards]
    return {"encoding": encoding, "shards": len(shards), "clips": written, "skipped": dict(skipped),
            "source_shard_bytes": sum(map(os.path.getsize, shards)),
            "packed_shard_bytes": sum(map(os.path.getsize, packed)),
            "other_files": len(others)}
