"""A file's computation graph (a torch.export program, an ONNX model) read as trace's scopes.

A front-end (`exported` for `.pt2`, `onnxfile` for `.onnx`) walks its graph in order and
hands each computation to `Scopes.add` with where it ran (the modules, path and class,
whose forwards made it, outermost first, as far as the file says), the module whose
tensors it holds (by their `state_dict` keys' prefix) and what it computes: a torch.nn
module rebuilt from the call, its tensors loaded (read back by trace's `module_op`, as a
traced module is), a netspec op, or what to say about it; a layer of several outputs
(`chunk`) hands out its pieces (`piece`), and a tensor of the model read as a value is a
parameter layer (`parameter`), first in its scope as trace puts one. The result is the
`Traced` that `blocks` and `render` write for a torch model, with a small graph of its own
(one node a layer: `call_module` of the layer's path) standing for the values, and
`weights`: the tensors under the built spec's `state_dict` keys.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from netspec.importer.errors import Unexpressed
from netspec.importer.trace import (
    Entry,
    Scope,
    Traced,
    fresh_name,
    learned,
    module_op,
    own_tensors_first,
    scope_chain,
    validated_op,
)
from netspec.ops import OPS, Op

CONTAINERS = ("torch.nn.modules.container.",)


Made = torch.nn.Module | Op | str
"""What a front-end reads a computation as: a torch.nn module rebuilt from it holding its
tensors, a netspec op, or what to say where no op computes it."""


Steps = list[tuple[Made, tuple[int, ...]]]
"""The layers one computation is read as, in order, each with its output's per-sample shape
(one, but a mean over space without keepdim: a pool, then a flatten)."""


@dataclass(frozen=True)
class Frame:
    """A module whose forward made a computation: its path, its class as the file names it
    (`torch.nn.modules.conv.Conv2d`; "" where the file does not say), and whether it is a
    layer (a computation it makes is a layer named as the module, in its parent's scope)."""

    path: str
    cls: str = ""
    leaf: bool = False

    @classmethod
    def of(cls, path: str, name: str) -> Frame:
        """The frame of the module at `path` of the class `name`: a layer where that is a
        torch.nn class other than a container."""
        return cls(path, name, name.startswith("torch.nn.modules.") and not name.startswith(CONTAINERS))


@dataclass
class Scopes:
    """Scopes being filled, the values they make (nodes of `graph`), and the tensors of
    their layers."""

    root_cls: str
    graph: torch.fx.Graph = field(default_factory=torch.fx.Graph)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    params: int = 0
    buffers: int = 0
    buffer_keys: set[str] = field(default_factory=set)
    """The keys of `weights` that are buffers (running statistics), not parameters."""
    missing: list[Unexpressed] = field(default_factory=list)
    pieces: dict[torch.fx.Node, tuple[str, str]] = field(default_factory=dict)
    """A layer of several outputs (`chunk`, `split`) -> its scope's path and its name."""

    def __post_init__(self) -> None:
        self.input = self.graph.placeholder("input")
        self.root = Scope("", self.root_cls.rpartition(".")[2] or "Module")
        self._scopes = {"": self.root}

    def add(self, stack: list[Frame], owner: str | None, made: Made,
            reads: list[torch.fx.Node], shapes: tuple[list[tuple[int, ...]], tuple[int, ...]],
            stem: str, what: str, named: str | None = None) -> torch.fx.Node:
        """The value of one computation: a layer of the scope it belongs to, named as the
        module `owner` whose tensors it holds (`layer1.0.conv1`: `conv1` in `layer1.0`), as
        the torch.nn layer that ran it (`relu`, `relu_1` for a second call), or its op (or
        `stem` where none computes it) or the name the file gives it (`named`: an ONNX
        node's) made fresh in the innermost module's scope. `shapes` are its inputs' and
        output's per-sample shapes; `what` names the op where no netspec op computes it."""
        inner = stack[-1] if stack else Frame("")
        if owner is not None:
            path, name = owner.rpartition(".")[0], owner.rpartition(".")[2]
        elif inner.leaf:
            path, name = inner.path.rpartition(".")[0], inner.path.rpartition(".")[2]
        else:
            path, name = inner.path, stem
        scope = self._scope(path, {f.path: f.cls for f in stack})
        found = module_op(made, *shapes) if isinstance(made, torch.nn.Module) else made
        if owner is None:  # a torch.nn layer's name, else the op's (`add`, `add_1`)
            name = name if inner.leaf else named or (found.kind() if isinstance(found, Op) else stem)
            taken = any(e.name == name for e in scope.entries)  # a Sequential's `2` computing twice
            name = fresh_name(f"call{name}" if taken and not name.isidentifier() else name, scope)
        elif not name or any(e.name == name for e in scope.entries):  # no layer can hold its tensors
            taken = next((e for e in scope.entries if e.name == name), None)
            found = "called again (shared weights)" if taken is not None and taken.scope is None else \
                f"reads the own tensors of {owner}, which holds modules besides (no layer holds them " \
                "under their keys)" if owner else "reads the model's own tensors (no layer holds them " \
                "under their keys)"
            name = fresh_name(name or stem, scope)
        if isinstance(found, Op):
            entry = Entry(name, found.kind(), found.model_dump(by_alias=True, exclude={"op"}), reads,
                          pieces=found.pieces() is not None)
            if isinstance(made, torch.nn.Module):
                self._hold(made, f"{path}.{name}" if path else name)
        else:
            said = what if found == what else f"{what}: {found}"
            entry = Entry(name, "identity", {}, reads[:1], missing=Unexpressed(owner or inner.path, said))
            self.missing.append(entry.missing)  # type: ignore[arg-type]
        node = self.graph.create_node("call_module", f"{path}.{name}" if path else name,
                                      tuple(reads))
        self._put(node, entry, path, scope)
        if entry.pieces:
            self.pieces[node] = (path, name)
        return node

    def piece(self, whole: torch.fx.Node, index: int) -> torch.fx.Node:
        """Piece `index` of the layer of several outputs made as `whole` (`chunk.1`)."""
        path, name = self.pieces[whole]
        node = self.graph.create_node("call_function", operator.getitem, (whole, index))
        self._scopes[path].made[node] = f"{name}.{index}"
        for at in scope_chain(path):
            self._scopes[at].inside.add(node)
        return node

    def parameter(self, key: str, tensor: torch.Tensor, rank: int, stack: list[Frame]) -> torch.fx.Node:
        """A tensor of the model read as a value (ConvNeXt's `layer_scale * x`): a parameter
        layer named as its `state_dict` key's last part in the scope of the module owning
        it, first in that scope (as trace reads one), holding it as `weight` of a leading 1;
        `rank` is its first use's per-sample rank."""
        path, name = key.rpartition(".")[0], key.rpartition(".")[2]
        scope = self._scope(path, {f.path: f.cls for f in stack})
        found = learned(list(tensor.shape), rank, key)
        name = fresh_name(name, scope)
        node = self.graph.create_node("call_module", f"{path}.{name}" if path else name, ())
        if isinstance(found, Op):
            entry = Entry(name, found.kind(), found.model_dump(by_alias=True, exclude={"op"}), [])
            self.weights[f"{path}.{name}.weight" if path else f"{name}.weight"] = \
                tensor.detach().clone().reshape(1, *found.shape)  # type: ignore[attr-defined]
            self.params += tensor.numel()
        else:
            entry = Entry(name, "identity", {}, [], missing=Unexpressed(key, found))
            self.missing.append(entry.missing)  # type: ignore[arg-type]
        self._put(node, entry, path, scope)
        return node

    def _put(self, node: torch.fx.Node, entry: Entry, path: str, scope: Scope) -> None:
        scope.entries.append(entry)
        scope.made[node] = entry.name
        for at in scope_chain(path):
            self._scopes[at].inside.add(node)

    def holds(self, owner: str) -> bool:
        """Whether a layer already holds the tensors of the module at `owner`."""
        return any(key.startswith(f"{owner}.") and "." not in key[len(owner) + 1:]
                   for key in self.weights)

    def _hold(self, module: torch.nn.Module, prefix: str) -> None:
        """Keep a rebuilt module's tensors under the spec's keys for them."""
        self.params += sum(p.numel() for p in module.parameters())
        self.buffers += sum(b.numel() for b in module.buffers())
        for key, tensor in module.state_dict().items():
            self.weights[f"{prefix}.{key}"] = tensor.detach().clone()
        self.buffer_keys.update(f"{prefix}.{key}" for key, _ in module.named_buffers())

    def _beside(self, entry: Entry, path: str, parent: Scope) -> None:
        """A layer holding the own tensors of the module at `path`, made before a submodule
        of it ran (nn.MultiheadAttention's `in_proj` beside its `out_proj`, read as aten
        calls): no layer can hold them under their keys beside the submodules', so it is
        listed and its tensors dropped, and its name left to the module's scope."""
        for key in [k for k in self.weights if k.rpartition(".")[0] == path]:
            count = self.weights.pop(key).numel()
            if key in self.buffer_keys:
                self.buffers -= count
            else:
                self.params -= count
        old, entry.name = entry.name, fresh_name(entry.name, parent)
        entry.missing = Unexpressed(path, f"reads the own tensors of {path}, which holds modules "
                                    "besides (no layer holds them under their keys)")
        entry.kind, entry.args, entry.reads = "identity", {}, entry.reads[:1]
        self.missing.append(entry.missing)
        for node, name in parent.made.items():
            if name == old:
                parent.made[node] = entry.name

    def _scope(self, path: str, classes: dict[str, str]) -> Scope:
        """The scope at `path`, made with the scopes above it as they first appear; its
        class the file's (the last part of its name), else a class standing for the
        module's place (`Sequential` for a numbered child's parent is set on finishing)."""
        if path not in self._scopes:
            parent = self._scope(path.rpartition(".")[0], classes)
            cls = classes.get(path, "").rpartition(".")[2]
            scope = Scope(path, cls)
            self._scopes[path] = scope
            leaf = path.rpartition(".")[2]
            clash = next((e for e in parent.entries if e.name == leaf and e.scope is None), None)
            if clash is not None:
                self._beside(clash, path, parent)
            parent.entries.append(Entry(leaf, "", {}, [], scope))
        return self._scopes[path]

    def traced(self, output: torch.fx.Node) -> Traced:
        """The scopes read, returning `output`; scopes of no class in the file (an ONNX
        file's node names give only paths) get one from what they hold: `Sequential` for
        numbered children, else one class per set of children's names."""
        self.graph.output(output)
        for scope in self._scopes.values():
            own_tensors_first(scope, self.input)
        shapes: dict[tuple[str, ...], str] = {}
        for scope in self._scopes.values():
            if scope.cls:
                continue
            children = tuple(sorted(e.name for e in scope.entries))
            if all(name.isdigit() for name in children):
                scope.cls = "Sequential"
            else:
                scope.cls = shapes.setdefault(children, f"Module{len(shapes) + 1}")
        return Traced(self.root, self.input, output, self.missing)


def merged(calls: list[tuple[list[Frame], set[str]]]) -> set[str]:
    """The modules of no submodules whose forward passes their own tensors to a call (and may
    make others: torchvision's LayerNorm2d, a layer norm between two permutes), from each
    call's modules (outermost first) and the modules whose tensors it reads: their calls are
    read in their parent's scope, the one holding the tensors as a layer named as the
    module (as trace reads them; a front-end drops their frames)."""
    found, deep = set(), set()
    for frames, owners in calls:
        deep.update(f.path for f in frames[:-1])
        if frames and frames[-1].path and frames[-1].path in owners:
            found.add(frames[-1].path)
    return found - deep


def loaded(module: torch.nn.Module, tensors: dict[str, torch.Tensor | None]) -> torch.nn.Module:
    """`module` holding `tensors` (by their names in it; those given as None it lacks)."""
    with torch.no_grad():
        for key, value in module.state_dict(keep_vars=True).items():
            given = tensors.get(key)
            if given is not None and given.shape == value.shape:
                value.copy_(tensors[key])  # type: ignore[arg-type]
    return module.eval()


def view(given: tuple[int, ...], wanted: tuple[int, ...]) -> Made:
    """A view keeping the batch: a flatten where it makes one dim of all, else a reshape."""
    if len(wanted) == 1 and len(given) > 1 and math.prod(given) == wanted[0]:
        return torch.nn.Flatten()
    return validated_op(OPS["reshape"], {"shape": list(wanted)}) or f"view to {list(wanted)}"


def all_spatial(dims: Any, rank: int) -> bool:
    """Whether `dims` are every spatial dim of a batch of [C, *spatial] maps of `rank`."""
    return isinstance(dims, list | tuple) and 3 <= rank <= 5 and \
        sorted(d % rank for d in dims) == list(range(2, rank))


def global_mean(shape: tuple[int, ...], keep: bool) -> Steps:
    """A mean over every spatial dim of [C, *spatial] maps `shape`, as netspec says it: an
    adaptive average pool to size 1 and, without keepdim, a flatten; each with its output's
    per-sample shape."""
    pooled = (shape[0], *(1 for _ in shape[1:]))
    pool = getattr(torch.nn, f"AdaptiveAvgPool{len(shape) - 1}d")(1)
    return [(pool, pooled)] if keep else [(pool, pooled), (torch.nn.Flatten(), shape[:1])]
