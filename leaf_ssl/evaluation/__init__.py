"""Judging a frozen model: linear probes (`probe`, `linear`), the tasks they read (`tasks`), the
embedding cache (`cache`), BatchNorm re-estimation (`batch_norm`), the paper's result tables
(`tables`) and the learnt filters' figures (`figures`)."""
