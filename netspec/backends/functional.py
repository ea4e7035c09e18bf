"""Functions compiled specs call for ops that torch has no module for. Imports torch: only
the torch backend (and modules it builds) import this."""

from __future__ import annotations

import torch
import torch.utils.checkpoint


def center_crop(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The middle `size` of `x`'s spatial dims (`[N, C, *S] -> [N, C, *size]`), starting at
    floor((S - size) / 2) in each. A dim already of its size is left alone: narrowing it
    would cost the backward a tensor of the input's size."""
    for dim, target in enumerate(size, start=2):
        if x.shape[dim] != target:
            x = x.narrow(dim, (x.shape[dim] - target) // 2, target)
    return x


def center_crop_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`x` cropped to `ref`'s spatial size, as U-Net's skip connections are."""
    return center_crop(x, tuple(ref.shape[2:]))


def interpolate_like(x: torch.Tensor, ref: torch.Tensor, mode: str = "nearest",
                     align_corners: bool | None = None) -> torch.Tensor:
    """`x` resized to `ref`'s spatial size (`[N, C, *S] -> [N, C, *ref.S]`), as FCN and
    DeepLab heads return to their input's size."""
    return torch.nn.functional.interpolate(x, size=tuple(ref.shape[2:]), mode=mode,
                                           align_corners=align_corners)


def reshape_samples(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Each sample of `x` in `shape` (one size may be -1), the batch kept first."""
    return x.reshape(x.shape[0], *shape)


def slice_dim(x: torch.Tensor, dim: int, start: int | None, end: int | None,
              step: int) -> torch.Tensor:
    """`x[:, ..., start:end:step]` along `dim` (torch's numbering, batch 0)."""
    index: list[slice] = [slice(None)] * x.dim()
    index[dim] = slice(start, end, step)
    return x[tuple(index)]



def gated(x: torch.Tensor, dim: int, activation: str) -> torch.Tensor:
    """`x` cut in two halves a and b along `dim`: a * activation(b), as torch.nn.GLU does
    with sigmoid (SwiGLU with silu, GEGLU with gelu); `activation` names a function of
    torch.nn.functional."""
    a, b = x.chunk(2, dim=dim)
    return a * getattr(torch.nn.functional, activation)(b)


def checkpointed(block, *inputs: torch.Tensor, state: torch.nn.Module | None = None
                 ) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """`block(*inputs)` (a module or a function), keeping only `inputs` for the backward
    pass, which calls `block` again to recompute what its layers keep
    (`torch.utils.checkpoint`, non-reentrant: the random state is replayed, so dropout
    drops alike). The recomputation leaves the buffers of `state` (default: `block`, a
    module) as the forward left them, so batch norm's running statistics move once per
    step, as without checkpointing. Where autograd records nothing (`no_grad`,
    inference), a plain call."""
    if not torch.is_grad_enabled():
        return block(*inputs)
    owner = state if state is not None else block
    calls = 0

    def run(*args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        nonlocal calls
        calls += 1
        if calls == 1 or not isinstance(owner, torch.nn.Module):
            return block(*args)
        buffers = list(owner.buffers())
        kept = [b.clone() for b in buffers]
        try:
            return block(*args)
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, kept, strict=True):
                    buffer.copy_(value)

    return torch.utils.checkpoint.checkpoint(run, *inputs, use_reentrant=False)


def training_only(block: torch.nn.Module, *inputs: torch.Tensor | None, outputs: int = 1
                  ) -> torch.Tensor | tuple[torch.Tensor | None, ...] | None:
    """`block(*inputs)` in training mode; in eval mode nothing runs and the result is None
    (`outputs` Nones when the block returns several): the layers only a spec's
    `auxiliary` outputs read."""
    if block.training:
        return block(*inputs)
    return None if outputs == 1 else (None,) * outputs


def with_auxiliary(outputs: tuple[torch.Tensor, ...], auxiliary: tuple[torch.Tensor | None, ...]
                   ) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A network's result: its outputs (one alone), then in training its auxiliary outputs
    (None in eval mode: each is made by a `training_only` call, and none is computed)."""
    returned = outputs if auxiliary[0] is None else (*outputs, *auxiliary)
    return returned[0] if len(returned) == 1 else returned
