"""Demucs' overlap-add separation with several segments per forward pass.

``demucs.apply.apply_model(split=True)`` runs one segment (7.8 s) at a time, which leaves
most of a large GPU idle.  :func:`apply_batched` cuts the same segments, pads each with the
same real context, weights them with the same triangular window and adds them up in the
same way, but sends ``batch`` segments through the network at once.  Its output equals
``apply_model``'s to float rounding (a test checks this, with the same random time shifts
when ``shifts > 0``), so the two are interchangeable; only the speed differs.  (HTDemucs'
transformer draws from Python's ``random`` on every forward pass, so with ``shifts > 0`` a
batched run, having made fewer passes, draws other shifts than an unbatched one from the
same seed: different, equally random shifts.)
"""

from __future__ import annotations

import random

import torch
from demucs.apply import BagOfModels, TensorChunk, tensor_chunk
from demucs.htdemucs import HTDemucs
from demucs.utils import center_trim

__all__ = ["apply_batched"]


def apply_batched(model: torch.nn.Module, mix: torch.Tensor, *, shifts: int = 0, overlap: float = 0.25,
                  segment: float | None = None, batch: int = 8, device: str | torch.device = "cpu") -> torch.Tensor:
    """Separate ``mix`` ``[1, channels, frames]`` (normalised as Demucs expects) into
    ``[1, sources, channels, frames]``, like ``apply_model(model, mix, shifts, split=True,
    overlap, segment, device)``.

    ``batch`` : int >= 1, segments per forward pass.  The mix and the result stay on the
    mix's device; only the segments in flight live on ``device``.
    """
    device = torch.device(device)
    if isinstance(model, BagOfModels):
        estimates = 0.0
        totals = [0.0] * len(model.sources)
        for sub, weights in zip(model.models, model.weights):
            out = apply_batched(sub, mix, shifts=shifts, overlap=overlap, segment=segment, batch=batch,
                                device=device)
            for k, w in enumerate(weights):
                out[:, k] *= w
                totals[k] += w
            estimates = estimates + out
        for k in range(estimates.shape[1]):
            estimates[:, k] /= totals[k]
        return estimates
    model.to(device).eval()
    if not shifts:
        return _split(model, mix, overlap=overlap, segment=segment, batch=batch, device=device)
    # apply_model's random time shifts, drawn the same way
    length = mix.shape[-1]
    max_shift = int(0.5 * model.samplerate)
    padded = tensor_chunk(mix).padded(length + 2 * max_shift)
    out = 0.0
    for _ in range(shifts):
        offset = random.randint(0, max_shift)
        shifted = TensorChunk(padded, offset, length + max_shift - offset)
        out = out + _split(model, shifted, overlap=overlap, segment=segment, batch=batch,
                           device=device)[..., max_shift - offset:]
    return out / shifts


def _split(model, mix, *, overlap: float, segment: float | None, batch: int, device) -> torch.Tensor:
    batch_n, channels, length = mix.shape
    seg = model.segment if segment is None else segment
    segment_length = int(model.samplerate * seg)
    stride = int((1 - overlap) * segment_length)
    # the triangle apply_model weights segments with (transition_power 1)
    weight = torch.cat([torch.arange(1, segment_length // 2 + 1),
                        torch.arange(segment_length - segment_length // 2, 0, -1)]).float()
    weight = weight / weight.max()
    out = torch.zeros(batch_n, len(model.sources), channels, length, device=_device_of(mix))
    sum_weight = torch.zeros(length, device=_device_of(mix))
    pending: list[tuple[int, int, torch.Tensor]] = []

    def flush():
        if not pending:
            return
        with torch.no_grad():
            y = model(torch.cat([p for _, _, p in pending]).to(device))
        for i, (offset, n, _) in enumerate(pending):
            chunk_out = center_trim(y[i * batch_n:(i + 1) * batch_n], n).to(out.device)
            out[..., offset:offset + n] += weight[:n].to(out.device) * chunk_out
            sum_weight[offset:offset + n] += weight[:n].to(out.device)
        pending.clear()

    for offset in range(0, length, stride):
        chunk = TensorChunk(mix, offset, segment_length)
        padded = chunk.padded(_valid_length(model, chunk.length, segment))
        if pending and padded.shape[-1] != pending[0][2].shape[-1]:
            flush()  # only equal lengths stack (models without a fixed training length)
        pending.append((offset, chunk.length, padded))
        if len(pending) >= batch:
            flush()
    flush()
    return out / sum_weight


def _valid_length(model, length: int, segment: float | None) -> int:
    if isinstance(model, HTDemucs) and segment is not None:
        return int(segment * model.samplerate)
    if hasattr(model, "valid_length"):
        return model.valid_length(length)
    return length


def _device_of(mix) -> torch.device:
    return mix.device if isinstance(mix, torch.Tensor) else mix.tensor.device
