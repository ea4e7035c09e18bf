"""`netspec import` of torchvision's classifiers saved as files: which import, and how close.

    NETSPEC_TORCHVISION=DIR python3 benchmarks/bench_import_files.py [pt2|onnx|dynamo] [NAME...]

Each of tests/test_import.py's CLASSIFIERS (default: all 32), with random weights and
batch-norm statistics (tests/test_import_files.py's `trained`; a tensor torchvision starts
at zero drawn too), is saved as a torch.export
program (`pt2`), or as ONNX by the TorchScript exporter (`onnx`) or the dynamo one
(`dynamo`), at 64x64 (224 or 299 where a net needs it), then imported, built with the
file's weights and run on a batch of two. Prints per net `ok` with the largest difference
from the file's outputs (the program's, onnxruntime's) relative to their largest magnitude,
or what the import listed; the README's figures come from here. The slow tests of
tests/test_import_files.py run some of these with an absolute tolerance of 1e-4.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

TESTS = Path(__file__).resolve().parent.parent / "tests"
SIZE = {"inception_v3": 299, "vit_b_16": 224, "maxvit_t": 224, "swin_t": 224}
"""Input sizes of the nets that need more than 64x64."""
FIXED_POOLS = {"alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg19_bn"}
"""Nets of an adaptive pool to 6x6 or 7x7, which both ONNX exporters write as a pool only
from a multiple of it (224x224): the TorchScript exporter refuses others, the dynamo one
gathers their windows (a GatherND, no netspec op)."""


def main() -> None:
    fmt = sys.argv[1] if len(sys.argv) > 1 else "pt2"
    sys.path.insert(0, str(TESTS))
    import torch
    from test_import import CLASSIFIERS
    from test_import_files import batch, built, save_onnx, save_program, trained
    from torchvision import models

    from netspec.importer import ImportFailure, import_file

    names = sys.argv[2:] or CLASSIFIERS
    passed = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            start = time.perf_counter()
            args = {"init_weights": True, "aux_logits": False} \
                if name in ("googlenet", "inception_v3") else {}
            model = _drawn(trained(getattr(models, name)(**args)))
            size = SIZE.get(name, 224 if fmt != "pt2" and name in FIXED_POOLS else 64)
            shape = (3, size, size)
            path = Path(folder) / f"{name}.{'pt2' if fmt == 'pt2' else 'onnx'}"
            if fmt == "pt2":
                save_program(model, path, shape)
            else:
                save_onnx(model, path, shape, dynamo=fmt == "dynamo")
            try:
                imported = import_file(path)
            except ImportFailure as exc:
                print(f"{name:20} listed: {len(exc.unexpressed)} computation(s), first "
                      f"{exc.unexpressed[0] if exc.unexpressed else exc}")
                continue
            net = built(imported.text, imported.weights or {})
            x = batch(shape)
            with torch.no_grad():
                got = net(x)
                want = torch.export.load(str(path)).module()(x) if fmt == "pt2" else _onnx(path, x)
            error = ((got - want).abs().max() / want.abs().max()).item()
            passed += error < 1e-5
            print(f"{name:20} ok: {error:.1e} of the outputs' scale {want.abs().max().item():.3g} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"{passed} of {len(names)} within 1e-5 of their outputs' scale ({fmt})")


def _drawn(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its all-zero tensors drawn at random (ViT's head and class token,
    biases): zeros would hide one read wrong, and make every output the same."""
    import torch

    with torch.no_grad():
        for tensor in model.parameters():
            if not tensor.any():
                tensor.normal_(std=0.5)
    return model


def _onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    """onnxruntime's output of the file for the batch `x`."""
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(out)


if __name__ == "__main__":
    main()
