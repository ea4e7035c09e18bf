"""Text from a language model trained on bytes (`netspec sample`, `netspec.sample`).

The model has a fixed window of T token ids. Each step feeds it the last T bytes of the
prompt and what was generated so far; while there are fewer than T, they fill the window
from its start and the next byte is drawn from the scores at the last of them. So a causal
model sees what it saw in training, where every window starts somewhere in the text and
position t predicts from positions 0..t alone; the positions after them hold byte 0, which
such a model never reads (a model that looks ahead would). Scores of ids past 255 (an
output wider than the 256 bytes) are never drawn. The bytes generated are decoded as UTF-8,
a byte sequence that is not valid UTF-8 as U+FFFD.
"""

from __future__ import annotations

from pathlib import Path

import torch

from netspec.errors import SpecError, TrainError
from netspec.training import checkpoints
from netspec.training.data import BYTES, DataError, token_length
from netspec.training.resume import saved_settings
from netspec.training.task import TaskError, check_language_model

DEFAULT_PROMPT = "\n"
"""What generation starts from when no prompt is given: the start of a line."""


def sample(run: Path, prompt: str = DEFAULT_PROMPT, length: int = 200, temperature: float = 1.0,
           top_k: int | None = None, seed: int = 0, spec: Path | None = None) -> str:
    """`length` bytes generated after `prompt` by the language model saved in `run` (a
    checkpoint, or a run folder: its best.pt, else last.pt), decoded as UTF-8 with errors
    replaced. `temperature` divides the scores (0: always the likeliest byte), `top_k` keeps
    the k likeliest bytes, and `seed` makes the draws repeatable. Raises TrainError for a
    checkpoint that cannot be read or holds no language model, or for a bad argument.
    `spec` is the spec file to build the model from (see `language_model`)."""
    _check_arguments(prompt, length, temperature, top_k)
    model, window = language_model(Path(run), spec)
    generator = torch.Generator().manual_seed(seed)
    context = list(prompt.encode())
    start = len(context)
    with torch.no_grad():
        for _ in range(length):
            recent = context[-window:]
            x = torch.zeros(1, window, dtype=torch.int64)  # (1, T)
            x[0, :len(recent)] = torch.tensor(recent)
            scores = model(x)[0, len(recent) - 1, :BYTES].float()  # (256,)
            context.append(_draw(scores, temperature, top_k, generator))
    return bytes(context[start:]).decode("utf-8", errors="replace")


def language_model(run: Path, spec_file: Path | None = None) -> tuple[torch.nn.Module, int]:
    """The model saved in `run`'s checkpoint, in eval mode on the CPU, and its window T,
    once the run was trained on text and its spec is a language model on bytes. The spec is
    `spec_file`, else the file the run was trained from while it is there (its `use:`
    files are found beside it), else the text the checkpoint holds; its architecture must
    be the checkpoint's."""
    from netspec.api import build, check, load

    try:
        path = checkpoints.locate(run)
        state = checkpoints.load(path)
    except checkpoints.CheckpointError as exc:
        raise TrainError(str(exc)) from None
    kind = saved_settings(state["config"], str(path)).data.kind
    if kind != "text":
        raise TrainError(f"{path} is not a language model: it was trained on {kind} data; "
                         f"netspec sample needs a run trained on `text` data")
    file = spec_file or Path(state["spec"].get("file") or "")
    chosen = {"scale": state["spec"].get("scale"), "params": state["spec"].get("params")}
    try:
        spec = load(file if file.is_file() else state["spec"]["text"], **chosen)
        report = check(spec)
    except SpecError as exc:
        where = file if file.is_file() else "the spec it holds"
        hint = "" if file.is_file() else " (name the spec file: --spec SPEC)"
        raise TrainError(f"{path}: {where} does not load: {exc.errors[0].format()}{hint}") from None
    try:
        checkpoints.check_spec(state, path, spec.name, checkpoints.architecture_hash(spec._graph))
        ((name, shape),), ((output, out_shape),) = report.inputs.items(), report.outputs.items()
        window = token_length(shape, report.token_inputs.get(name))
        check_language_model(output, out_shape, window, BYTES)
    except (checkpoints.CheckpointError, DataError, TaskError) as exc:
        raise TrainError(f"{path}: {exc}") from None
    model = build(spec)
    model.load_state_dict(state["model"])
    return model.eval(), window


def _check_arguments(prompt: str, length: int, temperature: float, top_k: int | None) -> None:
    if not prompt:
        raise TrainError("the prompt is empty: give at least one character (each byte is "
                         "drawn from the ones before it)")
    if length < 0:
        raise TrainError(f"length must be 0 or more, found {length}")
    if temperature < 0:
        raise TrainError(f"temperature must be 0 or more, found {temperature}")
    if top_k is not None and top_k < 1:
        raise TrainError(f"top_k must be 1 or more, found {top_k}")


def _draw(scores: torch.Tensor, temperature: float, top_k: int | None,
          generator: torch.Generator) -> int:
    """One byte from `scores` (256,): the likeliest at temperature 0, else drawn from the
    softmax of scores / temperature over the `top_k` likeliest (all when None)."""
    if temperature == 0:
        return int(scores.argmax())
    scores = scores / temperature
    if top_k is not None and top_k < len(scores):
        scores = scores.masked_fill(scores < scores.topk(top_k).values[-1], -torch.inf)
    return int(torch.multinomial(scores.softmax(0), 1, generator=generator))
