"""LEAF's Gabor filterbank, squared modulus and Gaussian pooling in one Pallas kernel ('fused').

`gabor_energy_pool(waveform, taps, windows, stride)` equals
`weighted_pool(squared_modulus(apply_filterbank(waveform, taps)), windows, stride)`, without writing the
full-rate (batch, 2C, samples) filter outputs to memory: each tile of them lives on chip only, and the
kernel writes pooled frames. The backward pass (a custom VJP) recomputes them tile by tile.

Geometry. The energy signal, 'SAME'-padded for the pooling, is cut into stride-long blocks as in
`pooling.weighted_pool`: frame i reads blocks i .. i+J-1 (J = ceil(window / stride)). Block n of one
filter's output is a matrix product

    u[n, s] = sum_{m<M} X[n, m] T[m, s],   X[n, m] = x_pad[n*stride + m],   T[m, s] = h[m - s] (0 <= m-s < K)

with M = stride + K - 1: a (blocks x M) slice of the waveform times an (M x stride) Toeplitz matrix of
the filter, so the work runs on matrix units, at M / K times the multiply-adds of the plain
convolution. The kernel takes tiles of F frames; each tile's F + J - 1 blocks (a halo of J - 1) are
gathered beforehand.

Grid: (filter tile, batch, frame tile), filters outermost, so that a tile's Toeplitz matrices stay on
chip while the waveform tiles stream past. The backward kernel sums the filter and window gradients
over the batch and frame-tile axes into its output blocks, so those axes must run in order: they are
'arbitrary' on TPU, and interpret mode (the CPU) runs everything in order. Pallas's GPU backend runs
every grid axis in parallel, so this kernel refuses GPUs.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from leaf_ssl.frontends.framing import blocks_per_window, num_frames, same_padding

FRAMES_PER_TILE = 16
FILTERS_PER_TILE = 4

_HIGHEST = lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class TileGeometry:
    """Static shapes of one fused call (hashable: it keys the kernel's compilation)."""
    samples: int
    taps: int
    window: int
    stride: int
    filters: int
    frames_per_tile: int
    filters_per_tile: int

    @property
    def frames(self) -> int:
        return num_frames(self.samples, self.stride)

    @property
    def blocks_per_frame(self) -> int:
        return blocks_per_window(self.window, self.stride)

    @property
    def tiles(self) -> int:
        return -(-self.frames // self.frames_per_tile)

    @property
    def rows(self) -> int:
        """Blocks per tile: its frames' own plus the halo."""
        return self.frames_per_tile + self.blocks_per_frame - 1

    @property
    def width(self) -> int:
        """M: the waveform samples one output block depends on."""
        return self.stride + self.taps - 1

    @property
    def filter_tiles(self) -> int:
        return self.filters // self.filters_per_tile


def make_geometry(samples: int, n_taps: int, window: int, stride: int, filters: int,
                  frames_per_tile: int = FRAMES_PER_TILE,
                  filters_per_tile: int = FILTERS_PER_TILE) -> TileGeometry:
    """The geometry of a call; filters per tile is the largest divisor of `filters` up to the asked one."""
    per_tile = max(d for d in range(1, min(filters_per_tile, filters) + 1) if filters % d == 0)
    return TileGeometry(samples, n_taps, window, stride, filters, frames_per_tile, per_tile)


def resolve_interpret(interpret: bool | None) -> bool:
    """None -> interpret on the CPU, compile on TPU; GPUs are refused (see the module docstring)."""
    backend = jax.default_backend()
    if interpret is None:
        interpret = backend == "cpu"
    if not interpret and backend not in ("tpu",):
        raise ValueError(
            f"filterbank_impl='fused' compiles for TPU only (this backend: {backend}); its backward "
            "kernel accumulates over grid axes that Pallas's GPU backend runs in parallel. "
            "Use filterbank_impl='fft' (or 'auto') here")
    return interpret


def waveform_tiles(waveform: jnp.ndarray, geometry: TileGeometry) -> jnp.ndarray:
    """(batch, samples) -> (batch, tiles, rows, M): row r of tile t is X[t*F + r, :] (module docstring).

    x_pad[i] = waveform[i - pad_before - (K-1)//2]: the pooling's 'SAME' shift, then the filter's.
    """
    g = geometry
    pad_before, _ = same_padding(g.samples, g.window, g.stride)
    shift = pad_before + (g.taps - 1) // 2
    length = (g.tiles * g.frames_per_tile + g.blocks_per_frame - 1) * g.stride + g.taps - 1
    padded = jnp.pad(waveform, ((0, 0), (shift, length - shift - g.samples)))
    tile, row, column = np.ogrid[:g.tiles, :g.rows, :g.width]
    index = (tile * g.frames_per_tile + row) * g.stride + column
    return padded[:, index]


def toeplitz_filters(taps: jnp.ndarray, geometry: TileGeometry) -> jnp.ndarray:
    """(channels, K) -> (channels, M, stride), T[c, m, s] = taps[c, m - s] where 0 <= m - s < K, else 0."""
    lag = np.arange(geometry.width)[:, None] - np.arange(geometry.stride)[None, :]
    inside = (lag >= 0) & (lag < geometry.taps)
    return jnp.where(inside, taps[:, np.clip(lag, 0, geometry.taps - 1)], 0.0)


def window_blocks(windows: jnp.ndarray, geometry: TileGeometry) -> jnp.ndarray:
    """(filters, window) -> (filters, J, stride): each window zero-padded to J*stride and cut in blocks."""
    g = geometry
    padded = jnp.pad(windows, ((0, 0), (0, g.blocks_per_frame * g.stride - g.window)))
    return padded.reshape(g.filters, g.blocks_per_frame, g.stride)


def energy_mask(geometry: TileGeometry) -> np.ndarray:
    """(tiles, rows, stride): 1 where the block sample is inside the signal, 0 in the pooling's padding."""
    g = geometry
    pad_before, _ = same_padding(g.samples, g.window, g.stride)
    tile, row, sample = np.ogrid[:g.tiles, :g.rows, :g.stride]
    position = (tile * g.frames_per_tile + row) * g.stride + sample - pad_before
    return ((position >= 0) & (position < g.samples)).astype(np.float32)


def _tile_responses(x, mask, real_taps, imag_taps):
    real = jnp.dot(x, real_taps, precision=_HIGHEST, preferred_element_type=jnp.float32)
    imag = jnp.dot(x, imag_taps, precision=_HIGHEST, preferred_element_type=jnp.float32)
    return real, imag, (real * real + imag * imag) * mask


def _forward_kernel(x_ref, mask_ref, real_ref, imag_ref, window_ref, out_ref, *, geometry):
    g = geometry
    x, mask = x_ref[0, 0], mask_ref[0]
    for c in range(g.filters_per_tile):
        _, _, energy = _tile_responses(x, mask, real_ref[c], imag_ref[c])
        window = window_ref[c]
        pooled = sum(jnp.sum(energy[j:j + g.frames_per_tile] * window[j], axis=1)
                     for j in range(g.blocks_per_frame))
        out_ref[0, 0, 0, c, :] = pooled


def _backward_kernel(x_ref, mask_ref, real_ref, imag_ref, window_ref, cotangent_ref,
                     d_real_ref, d_imag_ref, d_window_ref, *d_x_ref, geometry):
    g = geometry
    first_visit = (pl.program_id(1) == 0) & (pl.program_id(2) == 0)

    @pl.when(first_visit)
    def _zero_accumulators():
        d_real_ref[...] = jnp.zeros_like(d_real_ref)
        d_imag_ref[...] = jnp.zeros_like(d_imag_ref)
        d_window_ref[...] = jnp.zeros_like(d_window_ref)

    x, mask = x_ref[0, 0], mask_ref[0]
    halo = g.blocks_per_frame - 1
    d_x = jnp.zeros((g.rows, g.width), jnp.float32)
    for c in range(g.filters_per_tile):
        real_taps, imag_taps = real_ref[c], imag_ref[c]
        real, imag, energy = _tile_responses(x, mask, real_taps, imag_taps)
        cotangent, window = cotangent_ref[0, 0, 0, c], window_ref[c]
        # Frame i read block i + j through window block j: each block collects from the frames that read it.
        d_energy = mask * sum(jnp.pad(cotangent, (j, halo - j))[:, None] * window[j]
                              for j in range(g.blocks_per_frame))
        d_window_ref[c] += jnp.stack([jnp.dot(cotangent, energy[j:j + g.frames_per_tile], precision=_HIGHEST)
                                      for j in range(g.blocks_per_frame)])
        d_re, d_im = 2.0 * real * d_energy, 2.0 * imag * d_energy
        contract_rows = (((0,), (0,)), ((), ()))
        d_real_ref[c] += lax.dot_general(x, d_re, contract_rows, precision=_HIGHEST)
        d_imag_ref[c] += lax.dot_general(x, d_im, contract_rows, precision=_HIGHEST)
        if d_x_ref:
            contract_samples = (((1,), (1,)), ((), ()))
            d_x = (d_x + lax.dot_general(d_re, real_taps, contract_samples, precision=_HIGHEST)
                   + lax.dot_general(d_im, imag_taps, contract_samples, precision=_HIGHEST))
    if d_x_ref:
        d_x_ref[0][0, 0, 0] = d_x


def _specs(geometry: TileGeometry):
    """BlockSpecs of the inputs both kernels share, over the grid (filter tile, batch, frame tile)."""
    g = geometry
    return [
        pl.BlockSpec((1, 1, g.rows, g.width), lambda f, b, t: (b, t, 0, 0)),
        pl.BlockSpec((1, g.rows, g.stride), lambda f, b, t: (t, 0, 0)),
        pl.BlockSpec((g.filters_per_tile, g.width, g.stride), lambda f, b, t: (f, 0, 0)),
        pl.BlockSpec((g.filters_per_tile, g.width, g.stride), lambda f, b, t: (f, 0, 0)),
        pl.BlockSpec((g.filters_per_tile, g.blocks_per_frame, g.stride), lambda f, b, t: (f, 0, 0)),
    ]


def _pooled_spec(geometry: TileGeometry) -> pl.BlockSpec:
    g = geometry
    return pl.BlockSpec((1, 1, 1, g.filters_per_tile, g.frames_per_tile), lambda f, b, t: (f, b, t, 0, 0))


def cost_estimate(geometry: TileGeometry, batch: int, *, products: int, waveform_passes: int,
                  filter_passes: int) -> pl.CostEstimate:
    """What a kernel computes and moves, for XLA's cost analysis (which cannot see inside it).

    products: (rows x M) @ (M x stride) products per filter, real and imaginary, and tile (forward 1;
    backward 2, the recomputation and the filter gradient, + 1 for the waveform gradient).
    waveform_passes / filter_passes: times the waveform tiles go through memory per filter tile (read;
    written again as the waveform gradient's partials) / the Toeplitz filters do (read; their gradient).
    """
    g = geometry
    tile_bytes = 4 * batch * g.tiles * g.rows * g.width
    filter_bytes = 4 * 2 * g.filters * g.width * g.stride
    pooled_bytes = 4 * batch * g.filters * g.tiles * g.frames_per_tile
    return pl.CostEstimate(
        flops=2 * products * batch * g.tiles * g.rows * g.width * g.stride * 2 * g.filters, transcendentals=0,
        bytes_accessed=waveform_passes * g.filter_tiles * tile_bytes + filter_passes * filter_bytes + pooled_bytes)


def _mode(interpret: bool, semantics: tuple[str, ...], like) -> dict:
    """pallas_call's interpret and compiler_params.

    Inside `jax.shard_map` (operands varying over mesh axes) the interpreter is Pallas's TPU
    interpreter, which accepts device-varying operands where the generic one fails on them;
    elsewhere the generic interpreter, which the TPU one is not: under a jit replicated over
    several CPU devices the TPU interpreter waits at a barrier for devices whose host callbacks
    never run (measured: 8 fake devices abort after XLA's 40 s rendezvous timeout). The TPU
    interpreter also hangs inside a shard_map over several CPU devices (measured: two fake devices
    never return), so that case is refused by name.
    """
    axes = _varying(like)
    if interpret and axes:
        devices = math.prod(lax.axis_size(axis) for axis in axes)
        if devices > 1:
            raise ValueError(f"filterbank_impl='fused' is interpreted on the CPU, which works on one device "
                             f"only, not inside a shard_map over {devices}; use filterbank_impl='fft' (or 'auto') here")
        interpret = pltpu.InterpretParams()
    return {"interpret": interpret, "compiler_params": pltpu.CompilerParams(dimension_semantics=semantics)}


def _forward(geometry, interpret, x_tiles, real, imag, windows):
    g = geometry
    batch = x_tiles.shape[0]
    return pl.pallas_call(
        functools.partial(_forward_kernel, geometry=g),
        out_shape=_output((g.filter_tiles, batch, g.tiles, g.filters_per_tile, g.frames_per_tile), x_tiles),
        grid=(g.filter_tiles, batch, g.tiles),
        in_specs=_specs(g),
        out_specs=_pooled_spec(g),
        **_mode(interpret, ("parallel", "parallel", "parallel"), x_tiles),
        cost_estimate=cost_estimate(g, batch, products=1, waveform_passes=1, filter_passes=1),
        name="leaf_energy_pool",
    )(x_tiles, _mask_like(x_tiles, g), real, imag, windows)


def _backward(geometry, interpret, need_waveform_gradient, x_tiles, real, imag, windows, cotangent):
    g = geometry
    batch = x_tiles.shape[0]
    accumulated = pl.BlockSpec((g.filters_per_tile, g.width, g.stride), lambda f, b, t: (f, 0, 0))
    out_shape = [_output(real.shape, x_tiles), _output(imag.shape, x_tiles), _output(windows.shape, x_tiles)]
    out_specs = [accumulated, accumulated,
                 pl.BlockSpec((g.filters_per_tile, g.blocks_per_frame, g.stride), lambda f, b, t: (f, 0, 0))]
    if need_waveform_gradient:
        # One partial per filter tile, summed outside: the waveform tile is written once per grid step.
        out_shape.append(_output((g.filter_tiles,) + x_tiles.shape, x_tiles))
        out_specs.append(pl.BlockSpec((1, 1, 1, g.rows, g.width), lambda f, b, t: (f, b, t, 0, 0)))
    outputs = pl.pallas_call(
        functools.partial(_backward_kernel, geometry=g),
        out_shape=out_shape,
        grid=(g.filter_tiles, batch, g.tiles),
        in_specs=_specs(g) + [_pooled_spec(g)],
        out_specs=out_specs,
        **_mode(interpret, ("parallel", "arbitrary", "arbitrary"), x_tiles),
        cost_estimate=cost_estimate(g, batch, products=2 + need_waveform_gradient,
                                    waveform_passes=1 + need_waveform_gradient, filter_passes=2),
        name="leaf_energy_pool_backward",
    )(x_tiles, _mask_like(x_tiles, g), real, imag, windows, cotangent)
    d_x = jnp.sum(outputs[3], axis=0) if need_waveform_gradient else None
    return d_x, outputs[0], outputs[1], outputs[2]


def _varying(operand) -> frozenset:
    """The mesh axes `operand` varies over inside `jax.shard_map` (none outside one)."""
    return jax.typeof(operand).mat.varying


def _vary_over(operand, axes: frozenset):
    missing = axes - _varying(operand)
    return lax.pcast(operand, tuple(sorted(missing)), to="varying") if missing else operand


def _varying_alike(*operands):
    """Inside `jax.shard_map`, the operands cast to vary over the same mesh axes (the union of theirs).

    A kernel's outputs must declare how they vary (`_output`); declaring them as the operands all
    vary is right once the operands agree. The cast is outside the custom VJP, so that its transpose
    (a sum over those axes) is what autodiff applies to the cotangent of an operand that did not vary.
    """
    axes = frozenset().union(*map(_varying, operands))
    return tuple(_vary_over(operand, axes) for operand in operands)


def _mask_like(x_tiles, geometry: TileGeometry) -> jnp.ndarray:
    """`energy_mask`, varying as the waveform tiles do (`_varying_alike`)."""
    return _vary_over(jnp.asarray(energy_mask(geometry)), _varying(x_tiles))


def _output(shape, like) -> jax.ShapeDtypeStruct:
    """A float32 kernel output varying over the mesh axes `like` varies over (`_varying_alike`)."""
    return jax.ShapeDtypeStruct(shape, jnp.float32, manual_axis_type=jax.typeof(like).mat)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _energy_pool_tiles(geometry, interpret, x_tiles, real, imag, windows):
    return _forward(geometry, interpret, x_tiles, real, imag, windows)


def _energy_pool_tiles_fwd(geometry, interpret, x_tiles, real, imag, windows):
    values = (x_tiles.value, real.value, imag.value, windows.value)
    return _forward(geometry, interpret, *values), (values, x_tiles.perturbed)


def _energy_pool_tiles_bwd(geometry, interpret, residuals, cotangent):
    values, need_waveform_gradient = residuals
    return _backward(geometry, interpret, need_waveform_gradient, *values, cotangent)


_energy_pool_tiles.defvjp(_energy_pool_tiles_fwd, _energy_pool_tiles_bwd, symbolic_zeros=True)


def gabor_energy_pool(waveform: jnp.ndarray, taps: jnp.ndarray, windows: jnp.ndarray, stride: int, *,
                      frames_per_tile: int = FRAMES_PER_TILE, filters_per_tile: int = FILTERS_PER_TILE,
                      interpret: bool | None = None) -> jnp.ndarray:
    """Pooled energies of a complex filterbank, fused (see the module docstring).

    Args:
      waveform: (batch, samples) float32.
      taps: (2 * filters, K) float32, real and imaginary parts interleaved [re_0, im_0, re_1, ...].
      windows: (filters, window) per-filter pooling windows.
      stride: the pooling's hop in samples.
      frames_per_tile, filters_per_tile: the kernel's tile (filters: the largest divisor up to it).
      interpret: run the kernel in Pallas's interpreter; None: on the CPU only (`resolve_interpret`).

    Returns:
      (batch, filters, ceil(samples / stride)) float32, the same as the unfused path to float32 rounding.
    """
    filters, window = windows.shape
    if taps.shape[0] != 2 * filters:
        raise ValueError(f"{taps.shape[0]} filter taps rows for {filters} pooling windows: "
                         "expected 2 rows (real, imaginary) per window")
    geometry = make_geometry(waveform.shape[1], taps.shape[1], window, stride, filters,
                             frames_per_tile, filters_per_tile)
    toeplitz = toeplitz_filters(taps, geometry)
    operands = _varying_alike(waveform_tiles(waveform, geometry), toeplitz[0::2], toeplitz[1::2],
                              window_blocks(windows, geometry))
    pooled = _energy_pool_tiles(geometry, resolve_interpret(interpret), *operands)
    # (filter tiles, batch, tiles, filters per tile, frames per tile) -> (batch, filters, frames)
    batch = waveform.shape[0]
    pooled = jnp.transpose(pooled, (1, 0, 3, 2, 4)).reshape(batch, filters, geometry.tiles * frames_per_tile)
    return pooled[:, :, :geometry.frames]

