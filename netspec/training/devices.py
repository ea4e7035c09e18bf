"""Where and in what precision training runs: device choice, autocast, gradient scaling."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto`: cuda (this process's GPU under torchrun), then mps, then cpu. An explicit
    device that is not there raises ValueError with what is."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is available here; use cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        elif device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here; use cpu or auto")
    return device


@dataclass(frozen=True)
class Precision:
    """A resolved precision: `fp32`, or autocast to `bf16`/`fp16` (fp16 with a scaler)."""

    name: str
    device: torch.device

    @classmethod
    def resolve(cls, name: str, device: torch.device) -> Precision:
        """`auto` is bf16 on a GPU that supports it, else fp32. fp16 and bf16 on a device
        that lacks them raise ValueError."""
        bf16_ok = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
        if name == "auto":
            return cls("bf16" if device.type == "cuda" and bf16_ok else "fp32", device)
        if name == "bf16" and not bf16_ok:
            raise ValueError(f"--precision bf16: {device} does not support bfloat16; use fp16 or fp32")
        return cls(name, device)

    def autocast(self) -> AbstractContextManager[object]:
        """The forward pass's context: autocast for bf16/fp16, nothing for fp32."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.name])

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (bf16 has fp32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def tune(device: torch.device) -> None:
    """Set the backend up for speed on `device`: cudnn.benchmark and TF32 on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


CHANNELS_LAST = {3: torch.channels_last, 4: torch.channels_last_3d}
"""The channels-last layout of a batch by its samples' dimensions: images (C, H, W) and
volumes (C, D, H, W)."""


def memory_format(choice: bool | str, device: torch.device, sample_dims: int
                  ) -> torch.memory_format | None:
    """The layout of the model and its batches: channels-last when `choice` says so (`auto`:
    on CUDA, where tensor cores prefer it) and the samples are images or volumes; None:
    torch's default (contiguous)."""
    wanted = device.type == "cuda" if choice == "auto" else choice
    return CHANNELS_LAST.get(sample_dims) if wanted else None
