"""An independent COLA in PyTorch: the learning-parity peer of `python -m leaf_ssl.bench --what learning`.

Written from the specs, not from this package's Flax code: log-mel features as TensorFlow's
`tf.signal.stft` + `linear_to_mel_weight_matrix` compute them (LEAF's mel baseline), Keras'
EfficientNet (Tan & Le 2019; He-normal fan-out kernels, BatchNorm momentum 0.99 / eps 1e-3,
"SAME" padding, linearly growing drop-connect), COLA's head (Keras `Dense(512)`, glorot
uniform, LayerNorm, tanh, bias-free bilinear similarity) and SpecAugment on the positives,
trained by `torch.optim.AdamW` under linear warm-up + cosine decay.

torch is not a dependency of this package: this module imports it, and only the learning
benchmark imports this module (install with `pip install torch`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# (expand ratio, kernel, stride, output channels, repeats) of EfficientNet-B0's seven stages.
B0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
             (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def log_mel(waveform: torch.Tensor, *, sample_rate: int = 16000, n_filters: int = 40, n_fft: int = 512,
            window_ms: float = 25.0, stride_ms: float = 10.0, min_hz: float = 60.0, max_hz: float = 7800.0,
            log_offset: float = 1e-5) -> torch.Tensor:
    """(batch, samples) -> (batch, frames, n_filters): frames start every stride, zero-padded at the
    end (`pad_end=True`); a Hann window of int(rate * window_ms // 1000 + 1) samples, "periodic" as
    `tf.signal.hann_window` means it: only an even length gets the periodic form."""
    window = int(sample_rate * window_ms // 1000 + 1)
    stride = int(sample_rate * stride_ms // 1000)
    frames = -(-waveform.shape[1] // stride)
    padded = F.pad(waveform, (0, (frames - 1) * stride + window - waveform.shape[1]))
    framed = padded.unfold(1, window, stride)[:, :frames]
    hann = torch.hann_window(window, periodic=window % 2 == 0, dtype=waveform.dtype, device=waveform.device)
    power = torch.fft.rfft(framed * hann, n=n_fft).abs().square()
    weights = torch.as_tensor(mel_weights(n_filters, n_fft, sample_rate, min_hz, max_hz), dtype=waveform.dtype,
                              device=waveform.device)
    return torch.log(power @ weights + log_offset)


def mel_weights(n_filters: int, n_fft: int, sample_rate: int, min_hz: float, max_hz: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_filters) triangles over HTK mel, zero weight at DC."""
    def to_mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)
    bins = to_mel(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)[1:])
    edges = np.linspace(to_mel(min_hz), to_mel(max_hz), n_filters + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - left) / (centre - left)
    falling = (right - bins[:, None]) / (right - centre)
    return np.pad(np.maximum(0.0, np.minimum(rising, falling)), ((1, 0), (0, 0)))


def _round_channels(channels: float, width: float) -> int:
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


class SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (the extra row / column at the end)."""

    def forward(self, x):
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> SamePadConv:
    conv = SamePadConv(cin, cout, kernel, stride, groups=groups, bias=bias)
    # Keras' variance scaling (2, fan_out, truncated normal); a Keras depthwise kernel's fan-out is k*k.
    fan_out = kernel * kernel * (1 if groups > 1 else cout)
    std = math.sqrt(2.0 / fan_out) / TRUNCATED_NORMAL_STD
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def _batch_norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=1.0 - momentum)  # torch's momentum is 1 - Keras'


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, kernel, stride, drop_rate, bn_momentum):
        super().__init__()
        hidden = cin * expand
        self.expand = (nn.Sequential(_conv(cin, hidden, 1), _batch_norm(hidden, bn_momentum), nn.SiLU())
                       if expand != 1 else nn.Identity())
        self.depthwise = nn.Sequential(_conv(hidden, hidden, kernel, stride, groups=hidden),
                                       _batch_norm(hidden, bn_momentum), nn.SiLU())
        squeezed = max(1, int(cin * 0.25))
        self.se_reduce, self.se_expand = _conv(hidden, squeezed, 1, bias=True), _conv(squeezed, hidden, 1, bias=True)
        self.project = nn.Sequential(_conv(hidden, cout, 1), _batch_norm(cout, bn_momentum))
        self.residual = stride == 1 and cin == cout
        self.drop_rate = drop_rate

    def forward(self, inputs):
        x = self.depthwise(self.expand(inputs))
        gate = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(x.mean(dim=(2, 3), keepdim=True)))))
        x = self.project(x * gate)
        if not self.residual:
            return x
        if self.training and self.drop_rate > 0:
            keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.drop_rate).to(x.dtype)
            x = x * keep / (1.0 - self.drop_rate)
        return x + inputs


class EfficientNet(nn.Module):
    """(batch, frames, channels) features, as a one-channel image -> pooled (batch, head width)."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, drop_path_rate: float = 0.2, pooling: str = "max",
                 bn_momentum: float = 0.99):
        super().__init__()
        stem = _round_channels(32, width)
        self.stem = nn.Sequential(_conv(1, stem, 3, 2), _batch_norm(stem, bn_momentum), nn.SiLU())
        repeats = [math.ceil(depth * stage[4]) for stage in B0_STAGES]
        blocks, cin, index = [], stem, 0
        for (expand, kernel, stride, cout, _), count in zip(B0_STAGES, repeats):
            cout = _round_channels(cout, width)
            for repeat in range(count):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if repeat == 0 else 1,
                                     drop_path_rate * index / sum(repeats), bn_momentum))
                cin, index = cout, index + 1
        self.blocks = nn.Sequential(*blocks)
        self.output_dim = _round_channels(1280, width)
        self.head = nn.Sequential(_conv(cin, self.output_dim, 1), _batch_norm(self.output_dim, bn_momentum), nn.SiLU())
        self.pooling = pooling

    def forward(self, features):
        x = self.head(self.blocks(self.stem(features[:, None])))
        return x.amax(dim=(2, 3)) if self.pooling == "max" else x.mean(dim=(2, 3))


def spec_augment(features: torch.Tensor, masks: int, width: int, axis: int, generator: torch.Generator) -> torch.Tensor:
    """Zeroes `masks` bands per example along `axis` (1: frames, 2: channels), each of a width
    uniform in 0..width and a start uniform over the positions it fits."""
    batch, size = features.shape[0], features.shape[axis]
    positions = torch.arange(size)
    hidden = torch.zeros(batch, size, dtype=torch.bool)
    for _ in range(masks):
        widths = torch.randint(0, width + 1, (batch,), generator=generator).clamp(max=size)
        starts = (torch.rand(batch, generator=generator) * (size - widths + 1)).floor().long()
        hidden |= (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
    shape = (batch, size, 1) if axis == 1 else (batch, 1, size)
    return features.masked_fill(hidden.view(shape), 0.0)


class LogMel(nn.Module):
    """`log_mel` as a module (no parameters)."""

    def __init__(self, n_filters: int = 40, n_fft: int = 512):
        super().__init__()
        self.n_filters, self.n_fft = n_filters, n_fft

    def forward(self, waveform):
        return log_mel(waveform, n_filters=self.n_filters, n_fft=self.n_fft)


class Cola(nn.Module):
    """Frontend (log-mel unless given) -> EfficientNet -> Dense -> LayerNorm -> tanh -> similarity:
    COLA's bilinear one (no temperature), or 'dot': cosine / temperature.

    frontend: any module (batch, samples) -> (batch, frames, channels), e.g. SpeechBrain's Leaf."""

    def __init__(self, *, width=1.0, depth=1.0, drop_path_rate=0.2, pooling="max", bn_momentum=0.99,
                 embedding_dim=512, mel_filters=40, n_fft=512, similarity="bilinear", temperature=0.1,
                 freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=10, frontend=None):
        super().__init__()
        if similarity not in ("bilinear", "dot"):
            raise ValueError(f"unknown similarity {similarity!r}")
        self.frontend = frontend if frontend is not None else LogMel(mel_filters, n_fft)
        self.similarity, self.temperature = similarity, temperature
        self.encoder = EfficientNet(width, depth, drop_path_rate, pooling, bn_momentum)
        self.projection = nn.Linear(self.encoder.output_dim, embedding_dim)
        nn.init.xavier_uniform_(self.projection.weight)
        nn.init.zeros_(self.projection.bias)
        self.norm = nn.LayerNorm(embedding_dim, eps=1e-3)
        if similarity == "bilinear":
            self.bilinear = nn.Parameter(torch.empty(embedding_dim, embedding_dim))
            nn.init.xavier_uniform_(self.bilinear)
        self.masks = (freq_masks, freq_mask_width, time_masks, time_mask_width)

    def encode(self, waveform):
        return self.encoder(self.frontend(waveform))

    def forward(self, anchor, positive, generator):
        features = self.frontend(torch.cat([anchor, positive]))
        batch = anchor.shape[0]
        freq_masks, freq_width, time_masks, time_width = self.masks
        positive_features = spec_augment(features[batch:], freq_masks, freq_width, 2, generator)
        positive_features = spec_augment(positive_features, time_masks, time_width, 1, generator)
        pooled = self.encoder(torch.cat([features[:batch], positive_features]))
        z = torch.tanh(self.norm(self.projection(pooled)))
        if self.similarity == "dot":
            unit = F.normalize(z, dim=1, eps=1e-6)
            return unit[:batch] @ unit[batch:].T / self.temperature
        return z[:batch] @ self.bilinear @ z[batch:].T


class Trainer:
    """AdamW (decoupled decay scaled by the rate, like optax.adamw) with linear warm-up from 0 to
    `peak_rate` over `warmup_steps`, then cosine decay to 0 at `total_steps`."""

    def __init__(self, model: Cola, *, peak_rate: float, warmup_steps: int, total_steps: int, weight_decay: float,
                 seed: int):
        self.model, self.peak_rate = model, peak_rate
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=weight_decay, eps=1e-8)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0

    def rate(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak_rate * step / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return self.peak_rate * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def train_step(self, anchor: np.ndarray, positive: np.ndarray) -> dict:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate(self.step)
        logits = self.model(torch.tensor(anchor), torch.tensor(positive), self.generator)
        targets = torch.arange(logits.shape[0])
        loss = F.cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.item(), "accuracy": (logits.argmax(dim=1) == targets).float().mean().item()}

    @torch.no_grad()
    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Pooled encoder output of L2-normalised waveforms, in inference mode (what probes read)."""
        self.model.eval()
        batch = torch.tensor(np.asarray(waveforms, np.float32))
        batch = batch / batch.norm(dim=1, keepdim=True).clamp(min=1e-6)
        return self.model.encode(batch).numpy()
