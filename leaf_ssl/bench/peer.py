"""The PyTorch peer of the frontend benchmark: SpeechBrain's `Leaf`, forward + backward.

Neither torch nor speechbrain is a dependency of this package: they are imported only here, and
only when `python -m leaf_ssl.bench --what frontend --peer speechbrain` asks for them. When they
are missing, `speechbrain_leaf_step` raises `PeerUnavailable` with the install command, and the
benchmark goes on without the peer.
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


def speechbrain_leaf_step(waveform: np.ndarray, n_filters: int, platform: str, threads: int) -> Callable[[], None]:
    """A call that runs SpeechBrain `Leaf(n_filters)` forward + backward (of the summed features) on
    `waveform` (batch, samples) and waits for it.

    The peer runs where jax runs: on the CPU with `threads` intra-op threads, or on CUDA when jax's
    platform is 'gpu'. Its settings are those of `shared/bench/peer_torch.py`: 25 ms windows, 10 ms
    stride, 16 kHz, PCEN learnable, float32.

    Raises:
      PeerUnavailable: torch or speechbrain missing or unloadable, or jax on a device torch lacks.
    """
    try:
        import torch
        from speechbrain.lobes.features import Leaf
    # OSError: a package is there but its compiled extension does not load (e.g. a torchaudio
    # built for CUDA next to a CPU-only torch), which is as good as missing for this benchmark.
    except (ImportError, OSError) as error:
        raise PeerUnavailable(f"SpeechBrain's Leaf cannot be imported ({type(error).__name__}: {error}); "
                              f"{INSTALL_HINT}") from error

    if platform == "cpu":
        device = torch.device("cpu")
        torch.set_num_threads(threads)
        synchronize = None  # CPU kernels return when done
    elif platform == "gpu" and torch.cuda.is_available():
        device = torch.device("cuda")
        synchronize = torch.cuda.synchronize
    else:
        raise PeerUnavailable(f"jax runs on {platform!r} but this torch has no such device; the peer must run "
                              "on the same device as jax for the ratio to mean anything")

    torch.manual_seed(0)
    frontend = Leaf(out_channels=n_filters, window_len=25.0, window_stride=10.0, sample_rate=16000,
                    in_channels=1).to(device)
    batch = torch.from_numpy(np.array(waveform, dtype=np.float32)).to(device)

    def forward_backward() -> None:
        frontend.zero_grad(set_to_none=True)
        frontend(batch).sum().backward()
        if synchronize is not None:
            synchronize()

    return forward_backward
