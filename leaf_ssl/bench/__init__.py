"""Benchmarks and their peers: the suite (`suite`), the input pipeline (`input_pipeline`),
learning parity (`learning`, against `torch_cola`), SpeechBrain's Leaf (`peer`), and the CPU
accounting they share (`host`). Run through `python -m leaf_ssl.bench`."""
