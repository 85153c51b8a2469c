"""The PyTorch peers of the benchmarks: SpeechBrain's `Leaf` forward + backward (`--what frontend
--peer speechbrain`), and a whole COLA train step, SpeechBrain's Leaf or a log-mel + an EfficientNet +
COLA's head + AdamW (`--what step --peer torch`).

Neither torch nor speechbrain is a dependency of this package: they are imported only here, and
only when a benchmark asks for them. When they are missing, the peer's builder raises
`PeerUnavailable` with the install command, and the benchmark goes on without the peer.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

INSTALL_HINT = (
    "install the peer into this environment with `pip install torch speechbrain` (torch's CPU or CUDA "
    "build, whichever matches the device; speechbrain's own import also needs a torchaudio of the same "
    "build, which `pip install speechbrain` brings)"
)


class PeerUnavailable(RuntimeError):
    """The peer cannot run here: a package is missing or cannot be loaded, or no matching device."""


def _import_torch():
    try:
        import torch
    except (ImportError, OSError) as error:
        raise PeerUnavailable(f"torch cannot be imported ({type(error).__name__}: {error}); {INSTALL_HINT}") from error
    return torch


def _torch_device(platform: str, threads: int):
    """(torch device, a call that waits for its queued work or None) where jax runs."""
    import torch
    if platform == "cpu":
        torch.set_num_threads(threads)
        return torch.device("cpu"), None  # CPU kernels return when done
    if platform == "gpu" and torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.synchronize
    raise PeerUnavailable(f"jax runs on {platform!r} but this torch has no such device; the peer must run "
                          "on the same device as jax for the ratio to mean anything")


def _speechbrain_leaf(n_filters: int):
    try:
        from speechbrain.lobes.features import Leaf
    # OSError: a package is there but its compiled extension does not load (e.g. a torchaudio
    # built for CUDA next to a CPU-only torch), which is as good as missing for this benchmark.
    except (ImportError, OSError) as error:
        raise PeerUnavailable(f"SpeechBrain's Leaf cannot be imported ({type(error).__name__}: {error}); "
                              f"{INSTALL_HINT}") from error
    # The settings of the frontend benchmark's peer: 25 ms windows, 10 ms stride, 16 kHz, PCEN learnable.
    return Leaf(out_channels=n_filters, window_len=25.0, window_stride=10.0, sample_rate=16000, in_channels=1)


def speechbrain_leaf_step(waveform: np.ndarray, n_filters: int, platform: str, threads: int) -> Callable[[], None]:
    """A call that runs SpeechBrain `Leaf(n_filters)` forward + backward (of the summed features) on
    `waveform` (batch, samples) and waits for it.

    The peer runs where jax runs: on the CPU with `threads` intra-op threads, or on CUDA when jax's
    platform is 'gpu'. Its settings are those of the H200 peer measurements in docs/performance.md:
    25 ms windows, 10 ms stride, 16 kHz, PCEN learnable, float32.

    Raises:
      PeerUnavailable: torch or speechbrain missing or unloadable, or jax on a device torch lacks.
    """
    torch = _import_torch()
    device, synchronize = _torch_device(platform, threads)
    torch.manual_seed(0)
    frontend = _speechbrain_leaf(n_filters).to(device)
    batch = torch.from_numpy(np.array(waveform, dtype=np.float32)).to(device)

    def forward_backward() -> None:
        frontend.zero_grad(set_to_none=True)
        frontend(batch).sum().backward()
        if synchronize is not None:
            synchronize()

    return forward_backward


def torch_cola_step(anchor: np.ndarray, positive: np.ndarray, frontend: str, n_filters: int, dtype: str,
                    platform: str, threads: int, width_mult: float = 1.0, depth_mult: float = 1.0
                    ) -> Callable[[], None]:
    """A call that runs one whole COLA train step of the PyTorch peer on (anchor, positive) and waits
    for it: frontend (`leaf`: SpeechBrain's Leaf(n_filters); `mel`: `torch_cola`'s log-mel with
    n_filters bands), SpecAugment on the positives, EfficientNet (B0 scaled by width_mult and
    depth_mult), COLA's Dense + LayerNorm + tanh
    + bilinear head, softmax cross-entropy, backward, AdamW. `dtype` 'bfloat16' runs the forward
    under torch's autocast (mixed precision, as a PyTorch user gets it); 'float32' plain.

    Raises:
      PeerUnavailable: torch (or, for leaf, speechbrain) missing, or jax on a device torch lacks.
    """
    torch = _import_torch()
    from leaf_ssl.bench import torch_cola

    if frontend not in ("leaf", "mel"):
        raise PeerUnavailable(f"the step peer has the leaf and mel frontends, not {frontend!r}")
    if dtype not in ("float32", "bfloat16"):
        raise PeerUnavailable(f"the step peer runs float32 or bfloat16, not {dtype!r}")
    device, synchronize = _torch_device(platform, threads)
    torch.manual_seed(0)
    peer_frontend = _speechbrain_leaf(n_filters) if frontend == "leaf" else torch_cola.LogMel(n_filters)
    model = torch_cola.Cola(frontend=peer_frontend, width=width_mult, depth=depth_mult).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-6)
    generator = torch.Generator().manual_seed(0)
    anchor_tensor = torch.from_numpy(np.array(anchor, np.float32)).to(device)
    positive_tensor = torch.from_numpy(np.array(positive, np.float32)).to(device)
    targets = torch.arange(len(anchor), device=device)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            logits = model(anchor_tensor, positive_tensor, generator)
        torch.nn.functional.cross_entropy(logits.float(), targets).backward()
        optimizer.step()
        if synchronize is not None:
            synchronize()

    return train_step
