"""Expansion: a validated `Spec` becomes a flat `Graph` of canonical ops.

Each layer entry is an op name (`- relu`) or a mapping with exactly one op or block key and
optional meta keys:

    - conv2d: {out: 64, kernel: 3}     # the op and its arguments (or a short form)
      name: conv1                      # else an automatic one: conv1, conv2, ...
      from: [x, y]                     # inputs (else the previous layer)
      repeat: 3                        # chain 3 copies: name.0, name.1, name.2 (`i` is the index)
      if: stride != 1                  # keep the layer only when the expression holds
      frozen: true                     # exclude its parameters from training
      init: kaiming_normal             # initialise its weights (see netspec.init)
      checkpoint: true                 # a block call: recompute its layers in the backward

`frozen` and `init` on a block call apply to every layer inside it. `checkpoint` (a block
call's, true, false or an expression) keeps only the instance's inputs for the backward
pass and recomputes its layers there (`torch.utils.checkpoint`); each copy of a repeated
call is its own checkpoint, and one inside a checkpointed instance is part of it.

Names are scoped: inside a block instance `layer2.0`, `conv1` means `layer2.0.conv1`.
Parameters are scoped lexically: a block's layers see the spec's `params` and the block's
own, never those of the block that calls it (so a default cannot pick one up by accident).
A layer reads only earlier layers, so the graph is acyclic and its order topological.
Every problem becomes a positioned Diagnostic; expansion carries on past it so one run
reports all independent errors.
"""

from __future__ import annotations

import contextlib
import keyword
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from netspec import init as init_scheme
from netspec import limits, symbolic
from netspec.analysis import output_of
from netspec.errors import Diagnostic, Where, clipped, did_you_mean, quote_list, shown
from netspec.init import Init
from netspec.ir import Graph, Group, Locator, Node
from netspec.ops import OPS, Input, Op, ShapeError, Tensor, unknown_op_hint
from netspec.shapes import Shape
from netspec.spec import expr
from netspec.spec.document import ALL_SCALES, LAYER_NAME, LAYER_NAME_RULE, BlockDef, Spec, as_name
from netspec.spec.library import BlockSource
from netspec.spec.source import Pos, Source
from netspec.spec.validation import diagnostics, field_names

META = ("name", "from", "repeat", "if", "frozen", "init", "tie", "checkpoint")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = frozenset({
    "T_destination", "add_module", "add_submodule", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules",
    "delete_submodule", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
    "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "graph", "half", "ipu",
    "load_state_dict", "meta", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "print_readable", "recompile",
    "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "shape_env", "share_memory", "state_dict", "to",
    "to_empty", "to_folder", "train", "training", "type", "xpu", "zero_grad",
}) | frozenset(keyword.kwlist)
"""Names a layer cannot take: Python keywords and attributes of torch.nn.Module and
torch.fx.GraphModule, which compiled layers would clash with (a test keeps this in step
with the installed torch)."""


@dataclass(frozen=True, slots=True)
class _Deferred:
    """The position of argument `key`, found by `locate` only if an error needs it."""

    locate: Any
    key: Any

    def at(self) -> Where:
        return self.locate(self.key, False)


At = Pos | Locator | _Deferred
"""A position found only when an error needs it."""


MEMO_SIZE = 4096
"""Expansions kept per block for replay (`Expander.block`), at most."""
SHAPE_WORDS = frozenset({"cin", "in_shape", "in_shapes"})
"""The parameters through which a block reads its inputs' shapes."""


@dataclass(slots=True)
class _Instance:
    """A block instance as expanded: named `full`, reading `inputs`, inside the groups
    `groups_above`; its layers and groups, pieces of layers with several outputs
    (`Expander.multi`), the shapes it read, and the shape inference of the expansion that
    recorded it (`shapes` and `vocabs` go on filling as that expansion goes on; none for a
    block that reads no shape, whose key holds none, so its layers may have others)."""

    full: str
    inputs: tuple[str, ...]
    groups_above: tuple[str, ...]
    output: str
    nodes: list[Node]
    groups: list[Group]
    multi: dict[str, int]
    reads: tuple[tuple[tuple[str, int | None], Any], ...]
    shapes: dict[str, Shape | None]
    vocabs: dict[str, int | None]


class _Abort(Exception):
    """Stop expanding: a limit was hit (already reported)."""


class _UnknownShape(Exception):
    """A block read the shape of an input that has none: a layer before it failed, and
    that failure is reported where it happens (here, or by the analysis). The block
    instance is left unexpanded, silently."""


@dataclass
class _Scope:
    """Names visible to one layer list: the spec's top level or one block instance."""

    prefix: str
    env: dict[str, Any]
    names: dict[str, str]
    last: str | None
    groups: tuple[str, ...] = ()
    stack: tuple[str, ...] = ()
    frozen: bool = False
    init: Init | None = None
    declared: dict[str, At] = field(default_factory=dict)
    defined: dict[str, At] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)


class Expander:
    """Expands one spec; `graph()` returns the graph and leaves problems in `errors`."""

    def __init__(self, spec: Spec, source: Source, blocks: dict[str, BlockSource]):
        self.spec = spec
        self.source = source
        """The file whose YAML is being expanded: a used block's while its body expands."""
        self.blocks = blocks
        self.errors: list[Diagnostic] = []
        self.nodes: dict[str, Node] = {}
        self.groups: dict[str, Group] = {}
        self.limits = limits.current()
        self.input_count = 0
        """Nodes in `nodes` that are the network's inputs, not layers."""
        self.shapes: dict[str, Shape | None] = {}
        self.vocabs: dict[str, int | None] = {}
        """Output shapes inferred so far (None: the node has none), for blocks that read
        their inputs' shapes; nodes are inferred in order, each once, on demand."""
        self.order: list[str] = []
        self.shape_reads: dict[tuple[str, int | None], Any] = {}
        """The shapes blocks read while expanding: (layer, dim), dim None for all of it."""
        self.block_words: dict[int, frozenset[str]] = {}
        """`words` of each block called so far, by the id of its BlockSource (in `blocks`)."""
        self.multi: dict[str, int] = {}
        """Layers with several outputs (`chunk: 2`): name -> the count of its pieces, each a
        node of its own (`name.0`, `name.1`, ...)."""

    def error(self, where: Where | At, path: str, message: str, hint: str | None = None,
              code: str = "") -> None:
        at = where if isinstance(where, Where) else where.at()
        self.errors.append(Diagnostic(at, path, message, hint, code=code))

    def graph(self, input_shapes: dict[str, tuple[int, ...]]) -> Graph:
        doc = self.source.data if isinstance(self.source.data, dict) else {}
        vocabs = self.spec.input_vocabs()
        for name, shape in input_shapes.items():
            loc = Locator(self.source, doc, "inputs" if self.spec.inputs else "input")
            declared = Input.model_construct(shape=tuple(shape), vocab=vocabs.get(name))
            self.nodes[name] = Node(name, declared, (), loc,
                                    "input")
            self.order.append(name)
        self.input_count = len(input_shapes)
        layers = _raw(doc, "layers", self.spec.layers)
        if self.certainly_too_many(layers):
            return Graph(self.spec.name, self.nodes, list(input_shapes), [], self.groups, {})
        env = self.chosen_params(doc)
        self.globals = env
        top = _Scope("", env, {n: n for n in input_shapes}, next(iter(input_shapes)),
                      init=self.init_of(doc, "", scope_init=None))
        top.declared = dict.fromkeys(input_shapes, self.source.pos(doc))
        with contextlib.suppress(_Abort):
            self.body(layers, top, doc, "layers")
        listed = self.listed(doc, top, "outputs") or \
            [("outputs", p, self.source.pos(doc)) for p in self.pieces_of(top.last)]
        listed += self.listed(doc, top, "auxiliary")
        for i, (key, name, where) in enumerate(listed):
            first = next((k for k, other, _ in listed[:i] if other == name), None)
            if first is not None and not self.spec.outputs:
                self.error(where, key, f"`{name}` is the last layer, the output when `outputs` "
                           "names none, and an auxiliary output", "name the output: `outputs: "
                           "[LAYER]`", code="duplicate-output")
            elif first is not None:
                lists = f"`{key}`" if first == key else f"`{first}` and `{key}`"
                self.error(where, key, f"`{name}` is listed twice in {lists}",
                           "list each output once", code="duplicate-output")
        graph = Graph(self.spec.name, self.nodes, list(input_shapes),
                      [name for key, name, _ in listed if key == "outputs"], self.groups, env,
                      dict(self.shape_reads), [name for key, name, _ in listed if key == "auxiliary"])
        later = self.training_only_last(graph)
        for key, name, where in listed:
            if key == "auxiliary" and name not in later and name in self.nodes and \
                    name not in graph.outputs:  # (one listed twice is said above)
                self.error(where, key, f"`{name}` runs always (the outputs read it), so it cannot "
                           "be an auxiliary output, which runs in training only", "list a layer "
                           f"of its own: `- {{identity, from: {name}, name: aux}}`",
                           code="training-only")
        return graph

    def training_only_last(self, graph: Graph) -> set[str]:
        """Order the layers only `auxiliary` reads after every other (they run after them,
        in training only), and return them. A checkpointed block instance holding such a
        layer is an error: they are a training step's small heads, called only in
        training."""
        later = graph.training_only()
        if not later:  # no `auxiliary`: nothing to check or move
            return later
        checkpointed = {name: group.call for name, group in graph.groups.items()
                        if group.checkpoint and group.call is not None}
        for node in graph.layers():
            name = next((g for g in node.groups if g in checkpointed), None)
            if name is not None and node.name in later:
                self.error(checkpointed.pop(name).meta("checkpoint"), name, f"`{name}` holds "
                           f"`{node.name}`, which only `auxiliary` reads and runs in training "
                           "only; netspec checkpoints only layers that always run",
                           "leave the auxiliary layers out of the checkpointed block",
                           code="training-only")
        for moved in [n for n in graph.nodes if n in later]:
            graph.nodes[moved] = graph.nodes.pop(moved)
        return later

    def listed(self, doc: Any, top: _Scope, key: str) -> list[tuple[str, str, At]]:
        """The layers the spec's `outputs` or `auxiliary` list names: (key, node, where)
        each, a layer of several outputs as its pieces."""
        found = []
        for i, ref in enumerate(getattr(self.spec, key) or []):
            where = self.source.pos(doc, key, i)
            found += [(key, p, where) for p in self.pieces_of(self.resolve(ref, top, where, key))]
        return found

    # -- layer lists -------------------------------------------------------------------

    def certainly_too_many(self, layers: list[Any]) -> bool:
        """Whether the top-level list alone expands past the limit `layers` (reported at the
        entry that passes it): counted before expanding anything, so that 100,001 `- relu`
        lines are refused in milliseconds rather than after 100,000 nodes are built.

        It counts only what every expansion adds: one layer per op named alone (`- relu`),
        and `repeat` (1 unless a literal) per mapping with one op key and no `if:`; a block
        may expand to nothing, and an op wins over a block of its name, as in `entry`."""
        count = 0
        for index, entry in enumerate(layers):
            repeat = 0
            if isinstance(entry, str):
                count += self.op(entry) is not None
            elif isinstance(entry, dict) and "if" not in entry:
                keys = [k for k in entry if k not in META]
                if len(keys) == 1 and self.op(keys[0]) is not None:
                    repeat = entry.get("repeat", 1)
                    repeat = repeat if isinstance(repeat, int) and repeat > 1 else 1
                    count += repeat
            if count > self.limits.layers:
                if repeat > 1:
                    self.too_many_repeats(entry, "layers", repeat)
                else:
                    self.too_many_layers(Locator(self.source, layers, index), "layers")
                return True
        return False

    def too_many_layers(self, where: At, path: str) -> None:
        self.error(where, path, f"the network expands to more than {self.limits.layers:,} "
                   "layers (limit `layers`)", "check `repeat` counts; "
                   + limits.raise_hint("layers"), code="limit")

    def body(self, layers: list[Any], scope: _Scope, parent: Any, key: str) -> None:
        for entry in layers:
            name = as_name(entry.get("name")) if isinstance(entry, dict) else None
            if isinstance(name, str):
                scope.declared.setdefault(name, self.source.pos(entry, "name"))
        for index, entry in enumerate(layers):
            self.entry(entry, scope, Locator(self.source, layers, index))

    def entry(self, entry: Any, scope: _Scope, pos: Locator) -> None:
        where = pos
        if isinstance(entry, str):
            entry_loc, op_key, value, meta = pos, entry, None, {}
        elif isinstance(entry, dict):
            op_key, value, meta = self.split(entry, scope, where)
            if op_key is None:
                return
            entry_loc = Locator(self.source, entry, op_key)
        else:
            self.error(where, scope.prefix.rstrip("."), f"a layer is an op name or a mapping, "
                       f"found {shown(entry)}", "e.g. `- relu` or `- conv2d: {out: 64, kernel: 3}`",
                       code="bad-layer")
            return
        written = as_name(meta.get("name"))
        cls = self.op(op_key)
        stem = cls.stem() if cls is not None else clipped(op_key)
        label = scope.prefix + (clipped(written) if isinstance(written, str)
                                else self.next_auto(stem, scope))
        if "if" in meta and not self.condition(meta["if"], scope, entry, label):
            return
        repeat = self.repeat(meta["repeat"], scope, entry, label) if "repeat" in meta else 1
        name = self.layer_name(written, scope, entry, label)
        block = self.blocks.get(op_key)
        if cls is not None and cls.short_inputs and isinstance(value, list | str):
            if "from" in meta:
                self.error(where, scope.prefix + (name or op_key), f"{op_key} lists its inputs "
                           "twice: in its value and in `from`", code="bad-layer")
            meta = {**meta, "from": value}
            value, entry_loc = None, Locator(self.source, entry, op_key)
        if cls is None and block is None:
            first, dash, rest = op_key.partition(" - ")
            hint = (f"`- {rest}` is indented deeper than `- {first}`, so YAML reads it as part of "
                    f"that item: indent the items of one list alike") if dash else (
                unknown_op_hint(op_key, self.blocks))
            self.error(self.source.key_where(entry, op_key) if isinstance(entry, dict) else where,
                       label, f"unknown op `{clipped(op_key)}`", hint, code="unknown-op")
        if not isinstance(meta.get("frozen", False), bool):
            self.error(self.source.pos(entry, "frozen"), label, f"`frozen` must be true or "
                       f"false, found {shown(meta['frozen'])}", code="invalid-value")
        frozen = scope.frozen or meta.get("frozen") is True
        init = self.init_of(entry, label, scope.init) if "init" in meta else scope.init
        tie = self.tie_of(meta, scope, entry, label, block is not None and cls is None)
        checkpoint = self.checkpoint_of(meta, scope, entry, label, cls is None and block is not None,
                                        op_key if cls is not None else None)
        prev: list[str] = []
        outer = scope
        if block is not None and cls is None and name is not None and repeat > 1:
            # `name: layer1` over repeated blocks groups layer1.0, layer1.1, ... (a stage)
            stage = scope.prefix + name
            self.groups[stage] = Group(stage, f"{op_key} (repeat {repeat})", {},
                                       scope.groups[-1] if scope.groups else None, entry_loc)
            outer = replace(scope, groups=(*scope.groups, stage))
        for i in range(repeat):
            local = self.instance_name(name, i, repeat, stem, scope)
            full = scope.prefix + local
            env = {**scope.env, "i": i}
            if i == 0:  # later copies read the copy before them
                inputs = self.inputs(meta, scope, entry, full, op_key, where)
                wired, prev = inputs is not None, inputs or []
            if block is not None and cls is None:
                out = self.block(op_key, block, value, env, full, prev, outer, entry_loc,
                                 wired, frozen, init, checkpoint)
            else:
                op = self.make_op(cls, value, env, full, entry_loc) if cls else None
                op = op if wired else None  # an unresolved input: reported, not cascaded
                out = self.add_layer(Node(full, op, tuple(prev), entry_loc, op_key,
                                          scope.groups, frozen, init, tie=tie))
            scope.names[local] = out
            scope.defined[local] = where
            prev = [out]
        if name is not None and repeat > 1:
            scope.names[name] = prev[0]
            scope.defined[name] = where
        scope.last = prev[0]

    def tie_of(self, meta: dict[str, Any], scope: _Scope, entry: Any, label: str,
               is_block: bool) -> str | None:
        """The layer whose weight `tie:` names (an earlier one), or None (after an error)."""
        if "tie" not in meta:
            return None
        where = self.source.pos(entry, "tie")
        if is_block:
            self.error(where, label, "`tie` shares one layer's weight; a block holds many",
                       "tie a layer inside the block", code="bad-tie")
            return None
        return self.resolve(meta["tie"], scope, where, label)

    def checkpoint_of(self, meta: dict[str, Any], scope: _Scope, entry: Any, label: str,
                      is_block: bool, op: str | None) -> bool:
        """Whether `checkpoint:` (true, false or an expression) asks to recompute a block
        call's layers in the backward pass (on the layer of an `op`: an error)."""
        if "checkpoint" not in meta:
            return False
        where = self.source.pos(entry, "checkpoint")
        value = self.evaluate(meta["checkpoint"], scope.env, where, label)
        if value is not None and not isinstance(value, bool):
            self.error(where, label, f"`checkpoint` must be true or false, found {shown(value)}",
                       code="invalid-value")
        elif value and op is not None:
            self.error(where, label, f"`checkpoint` recomputes a block's layers in the backward "
                       f"pass; `{op}` is an op, not a block", "call a block holding the layer "
                       "with `checkpoint: true`", code="invalid-value")
        return value is True and is_block

    def op(self, key: Any) -> type[Op] | None:
        """The op `key` names: a built-in, else a plugin's unless the spec has a block of
        that name. A built-in wins over a block of its name; a spec's own block over a
        plugin's op, so installing a plugin never changes what a spec means (and a spec of
        built-ins and blocks loads no plugin)."""
        if not isinstance(key, str):
            return None
        found = OPS.builtin.get(key)
        return found if found is not None or key in self.blocks else OPS.get(key)

    def split(self, entry: dict[Any, Any], scope: _Scope, where: At
              ) -> tuple[str | None, Any, dict[str, Any]]:
        """(op key, its value, meta keys) of a mapping entry, or None after an error."""
        keys = [k for k in entry if k not in META]
        known = [k for k in keys if k in self.blocks or self.op(k) is not None]
        strays = [k for k in keys if k not in known]
        written = as_name(entry.get("name"))
        if isinstance(written, str):
            path = scope.prefix + clipped(written)
        elif len(known) == 1:
            op = self.op(known[0])
            stem = op.stem() if op is not None else clipped(str(known[0]))
            path = scope.prefix + self.next_auto(stem, scope)
        else:
            path = scope.prefix.rstrip(".")
        if len(keys) == 1:
            return str(keys[0]), entry[keys[0]], {k: entry[k] for k in META if k in entry}
        if not keys:
            self.error(where, path, "a layer needs an op", "e.g. `- conv2d: {out: 64, "
                       "kernel: 3}`", code="bad-layer")
        elif len(known) == 1:
            op_args = self.argument_names(known[0])
            for k in strays:
                if entry[known[0]] is None and k in op_args:  # `- conv2d:` then `  out: 6`
                    self.error(self.source.key_where(entry, k), path, f"`{clipped(str(k))}` is indented as a "
                               f"key of the list item, not of `{known[0]}`", f"indent it under "
                               f"`{known[0]}` by two more spaces", code="bad-indent")
                    continue
                if k in op_args:  # `- conv2d: 64` then `  kernel: 3`
                    self.error(self.source.key_where(entry, k), path, f"`{clipped(str(k))}` is "
                               f"an argument of `{known[0]}`, written as a key of the list item",
                               f"write it among `{known[0]}`'s arguments: "
                               f"`{self.merged(known[0], entry, strays)}`", code="unknown-key")
                    continue
                hint = did_you_mean(k, META) or f"layer keys: {quote_list(META, near=k)}"
                self.error(self.source.key_where(entry, k), path,
                           f"unknown layer key `{clipped(str(k))}`", hint, code="unknown-key")
        else:
            names = " and ".join(f"`{clipped(str(k))}`" for k in keys[:3])
            names += f" and {len(keys) - 3:,} more" if len(keys) > 3 else ""
            self.error(where, path, f"a layer names exactly one op, found {names}",
                       "put each op in its own list item", code="bad-layer")
        return None, None, {}

    def merged(self, kind: str, entry: dict[Any, Any], strays: list[Any]) -> str:
        """`conv2d: {out: 64, kernel: 3}`: an entry's value (a mapping or a short form) with
        the op's arguments written beside it moved in, as the spec would write them."""
        value = entry[kind]
        op = self.op(kind)
        names = op.positional if op is not None else tuple(self.blocks[kind].definition.params)
        if isinstance(value, dict):
            args = dict(value)
        else:
            items = value if isinstance(value, list) and len(names) > 1 else [value]
            args = dict(zip(names, items, strict=False))
        args.update({k: entry[k] for k in strays if k in self.argument_names(kind)})
        return clipped(f"{kind}: {{{', '.join(f'{k}: {_flow(v)}' for k, v in args.items())}}}", 120)

    def argument_names(self, kind: str) -> list[str]:
        """The keys an op or a block call takes (`out`, `kernel`, ...; a block's parameters)."""
        op = self.op(kind)
        return field_names(op) if op is not None else list(self.blocks[kind].definition.params)

    def init_of(self, holder: Any, path: str, scope_init: Init | None) -> Init | None:
        """The `init:` of a layer entry (or the spec), over the enclosing one."""
        value = holder.get("init") if isinstance(holder, dict) else None
        if value is None:
            return scope_init
        try:
            return init_scheme.parse(value).over(scope_init)
        except init_scheme.InitError as exc:
            if exc.at_key:  # an unknown name: point at the key, in the mapping holding it
                owner = value
                for key in exc.keys[:-1]:
                    owner = owner[key]
                where: Where | At = self.source.key_where(owner, exc.keys[-1])
            else:
                where = self.source.pos(holder, "init", *exc.keys)
            self.error(where, path, str(exc), exc.hint, code="bad-init")
            return scope_init

    def layer_name(self, name: Any, scope: _Scope, entry: Any, label: str) -> str | None:
        """The name `name:` gives (an integer as its digits), or None when there is none or
        it is refused (reported)."""
        name = as_name(name)
        if name is None:
            return None
        longest = self.limits.name_length
        if isinstance(name, str) and len(name) > longest:
            self.error(self.source.pos(entry, "name"), label, f"layer name `{clipped(name)}` has "
                       f"{len(name):,} characters, more than {longest:,} (limit `name_length`)",
                       limits.raise_hint("name_length"), code="limit")
            return None
        if not isinstance(name, str) or not re.match(LAYER_NAME, name):
            self.error(self.source.pos(entry, "name"), label,
                       f"layer name {shown(name)} {LAYER_NAME_RULE}", code="bad-name")
            return None
        if name in RESERVED:
            self.error(self.source.pos(entry, "name"), label,
                       f"layer name `{name}` is reserved (a Python keyword or a torch module "
                       "attribute)", f"e.g. `{name}_`", code="bad-name")
            return None
        if name in scope.defined or (name in self.spec.input_shapes() and not scope.prefix):
            first = scope.defined.get(name)
            at = f" (first at line {first.at().line})" if first else " (an input)"
            self.error(self.source.pos(entry, "name"), scope.prefix + name,
                       f"duplicate name `{name}`{at}", "names must be unique in their block",
                       code="duplicate-name")
            return None
        return name

    def instance_name(self, name: str | None, i: int, repeat: int, stem: str, scope: _Scope) -> str:
        if name is not None:
            return f"{name}.{i}" if repeat > 1 else name
        auto = self.next_auto(stem, scope)
        scope.counters[stem] = int(auto[len(stem):].lstrip("_"))
        return auto

    @staticmethod
    def next_auto(stem: str, scope: _Scope) -> str:
        """The next automatic name for `stem` (conv1, conv2, ...; conv3x3_1 after a digit),
        skipping names the scope already has or declares."""
        glue = "_" if stem[-1:].isdigit() else ""
        n = scope.counters[stem]
        while True:
            n += 1
            auto = f"{stem}{glue}{n}"
            if auto not in scope.declared and auto not in scope.names:
                return auto

    def add_layer(self, node: Node) -> str:
        """Add a layer; one whose op has several outputs becomes a node per output,
        `name.0`, `name.1`, ..., each computing its piece, and `name` stands for them."""
        count = node.op.pieces() if node.op is not None else None
        if count is None:
            return self.add(node)
        for k in range(count):
            piece = node.op.model_copy(update={"index": k})  # type: ignore[union-attr]
            self.add(Node(f"{node.name}.{k}", piece, node.inputs, node.loc, node.kind,
                          node.groups, node.frozen, node.init))
        self.multi[node.name] = count
        return node.name

    def add(self, node: Node) -> str:
        if len(self.nodes) - self.input_count >= self.limits.layers:
            self.too_many_layers(node.where, node.name)
            raise _Abort
        self.nodes[node.name] = node
        self.order.append(node.name)
        return node.name

    def shape_of(self, name: str) -> Shape:
        """The output shape of node `name`, inferred (with every node before it not yet
        inferred) by the analysis' own rule; _UnknownShape when it has none."""
        while name not in self.shapes:
            node = self.nodes[self.order[len(self.shapes)]]
            inputs = [self.shapes.get(i) for i in node.inputs]
            shape = None
            if node.op is not None and None not in inputs:
                tensors = [Tensor(s, i, isinstance(self.nodes[i].op, Input),  # type: ignore[arg-type]
                                  vocab=self.vocabs[i])
                           for s, i in zip(inputs, node.inputs, strict=True)]
                with contextlib.suppress(ShapeError):
                    shape, self.vocabs[node.name] = output_of(node, node.op, tensors)
            self.shapes[node.name] = shape
        found = self.shapes[name]
        if found is None:
            raise _UnknownShape(name)
        return found

    # -- meta keys ---------------------------------------------------------------------

    def condition(self, text: Any, scope: _Scope, entry: Any, label: str) -> bool:
        """Whether `if:` keeps the layer: a boolean, or an expression (taken as Python
        takes a condition); a layer whose condition is malformed is kept."""
        if not isinstance(text, bool | str):
            self.error(self.source.pos(entry, "if"), label, f"`if` must be true, false or an "
                       f"expression, found {shown(text)}", "e.g. `if: stride != 1`",
                       code="invalid-value")
            return True
        value = self.evaluate(text, scope.env, self.source.pos(entry, "if"), label)
        return bool(value)

    def repeat(self, value: Any, scope: _Scope, entry: Any, label: str) -> int:
        value = self.evaluate(value, scope.env, self.source.pos(entry, "repeat"), label)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            if value is not None:
                self.error(self.source.pos(entry, "repeat"), label,
                           f"`repeat` must be a positive integer, found {shown(value)}",
                           code="invalid-value")
            return 1
        if len(self.nodes) - self.input_count + value > self.limits.layers:
            self.too_many_repeats(entry, label, value)
            raise _Abort
        return value

    def too_many_repeats(self, entry: dict[str, Any], label: str, value: int) -> None:
        self.error(self.source.pos(entry, "repeat"), label,
                   f"`repeat: {value}` would expand beyond {self.limits.layers:,} layers "
                   "(limit `layers`)", limits.raise_hint("layers"), code="limit")

    def inputs(self, meta: dict[str, Any], scope: _Scope, entry: Any, path: str,
               op_key: str, where: At) -> list[str] | None:
        """Full names of the layer's inputs (`from` resolved, else the previous layer), or
        None when a reference failed (already reported)."""
        if "from" not in meta:
            if scope.last in self.multi:
                self.read_whole(scope.last, scope, where, path, previous=True)
                return None
            return [scope.last] if scope.last else []
        refs = meta["from"]
        key = "from" if isinstance(entry, dict) and "from" in entry else op_key
        many = isinstance(refs, list)
        out = []
        for i, ref in enumerate(refs if many else [refs]):
            at = self.source.pos(entry, key, i) if many else self.source.pos(entry, key)
            full = self.resolve(ref, scope, at, path)
            if full in self.multi:
                self.read_whole(full, scope, at, path)
                return None
            if full is None:
                return None
            out.append(full)
        return out

    def read_whole(self, full: str, scope: _Scope, where: At, path: str,
                   previous: bool = False) -> None:
        """Report a read of a layer with several outputs as one tensor."""
        name = full.removeprefix(scope.prefix)
        pieces = [f"`{name}.{k}`" for k in range(min(self.multi[full], 3))]
        listed = ", ".join(pieces) + (", ..." if self.multi[full] > 3 else "")
        what = f"the layer before it, `{name}`," if previous else f"`{name}`"
        self.error(where, path, f"{what} has {self.multi[full]:,} outputs ({listed}): a layer "
                   "reads one", f"name the one it reads: `from: {name}.0`", code="bad-ref")

    def pieces_of(self, full: str | None) -> list[str]:
        """The nodes a name stands for: its pieces when it has several outputs."""
        if full in self.multi:
            return [f"{full}.{k}" for k in range(self.multi[full])]
        return [full] if full else []

    def resolve(self, ref: Any, scope: _Scope, where: At, path: str) -> str | None:
        """The full node name a reference means in `scope`, or None after an error."""
        ref = as_name(ref)
        if not isinstance(ref, str):
            hint = f"quote it: `'{ref}'` (YAML reads {ref} as a number)" \
                if isinstance(ref, float) else None
            self.error(where, path, f"an input is a layer name, found {shown(ref)}", hint,
                       code="bad-ref")
            return None
        if ref in scope.names:
            return scope.names[ref]
        dotted = scope.prefix + ref
        if "." in ref and dotted in self.nodes:
            return dotted
        if ref in scope.declared:
            later = scope.declared[ref]
            if path.rsplit(".", 1)[-1] == ref:
                message = f"`{clipped(ref)}` reads itself, which would make a cycle"
            else:
                message = (f"`{clipped(ref)}` is defined later (line {later.at().line}); a layer "
                           "can read only earlier layers")
            self.error(where, path, message, code="bad-ref")
            return None
        hint = did_you_mean(ref, scope.names) or f"known here: {quote_list(scope.names, near=ref)}"
        self.error(where, path, f"unknown layer `{clipped(ref)}`", hint, code="bad-ref")
        return None

    # -- ops and blocks ----------------------------------------------------------------

    def make_op(self, cls: type[Op], value: Any, env: dict[str, Any], path: str,
                loc: Locator) -> Op | None:
        """Validate one layer's arguments (short form or mapping) as `cls`'s canonical model."""
        args, arg_at = self.arguments(cls, value, loc, path)
        if args is None:
            return None
        failed = False
        written = {k: v for k, v in args.items() if isinstance(v, str)}
        for key in list(args):
            evaluated = self.substitute(args[key], env, _Deferred(arg_at, key), path)
            if evaluated is _FAILED:
                failed = True
            args[key] = evaluated
        if failed:
            return None
        try:
            return cls.model_validate(symbolic.concrete(args))
        except ValidationError as exc:
            found = diagnostics(exc, cls, cls.kind(), path,
                                lambda loc, at_key: arg_at(loc[0] if loc else None, at_key), written)
            if cls.arity[1] != 1 and isinstance(value, list) and all(isinstance(v, str) for v in value):
                found = [replace(d, hint=f"to read layers {', '.join(value)}, write "
                                         f"`from: [{', '.join(value)}]`") for d in found]
            elif len(cls.positional) == 1 and isinstance(value, list) and len(value) == 1:
                found = [replace(d, hint=d.hint or f"a short form is the value itself: "
                                                   f"`{cls.kind()}: {value[0]}`") for d in found]
            self.errors.extend(found)
            return None

    def arguments(self, cls: type[Op] | None, value: Any, loc: Locator, path: str):
        """Normalise a short form to a dict; return it with a function locating each key."""
        source = self.source
        container = loc.entry[loc.key] if isinstance(loc.entry, dict) else None
        names = cls.positional if cls else ()

        def arg_at(key: Any, at_key: bool) -> Where:
            if isinstance(value, dict) and key in value:
                return source.key_where(value, key) if at_key else source.where(value, key)
            if isinstance(value, list) and key in names:
                return source.where(container, names.index(key))
            return loc.at()

        if value is None:
            return {}, arg_at
        if isinstance(value, dict):
            return dict(value), arg_at
        if isinstance(value, list) and len(names) == 1:  # `adaptive_avgpool2d: [7, 7]`
            return {names[0]: value}, arg_at
        items = value if isinstance(value, list) else [value]
        what = cls.kind() if cls else "this block"
        if not names:
            self.error(loc.at(), path, f"{what} takes no short-form value, found {shown(value)}",
                       f"write its arguments as a mapping: `{what}: {{key: value}}`",
                       code="bad-short-form")
            return None, arg_at
        if len(items) > len(names) or not items:
            bound = f"at most {len(names)}" if items else f"1 to {len(names)}"
            self.error(loc.at(), path, f"{what} takes {bound} short-form values "
                       f"({', '.join(names)}), found {len(items)}", code="bad-short-form")
            return None, arg_at
        if None in items:  # a default is written by leaving the value out
            key = names[items.index(None)]
            self.error(arg_at(key, False), path, f"{what}'s short form lists values; `{key}` "
                       "is null", f"write the arguments as a mapping (`{what}: {{...}}`) to leave "
                       f"`{key}` at its default", code="bad-short-form")
            return None, arg_at
        return dict(zip(names, items, strict=False)), arg_at

    def block(self, kind: str, found: BlockSource, value: Any, env: dict[str, Any], full: str,
              inputs: list[str], scope: _Scope, loc: Locator, wired: bool, frozen: bool,
              init: Init | None, checkpoint: bool = False) -> str:
        """Expand one block instance under the name `full` (recomputed in the backward pass
        with `checkpoint`); return its output node's name.

        An instance that cannot be expanded (bad inputs or parameters, recursion) becomes
        one op-less node, so what reads it reports nothing more."""
        def broken() -> str:
            return self.add(Node(full, None, tuple(inputs), loc, kind, scope.groups))

        if kind in scope.stack:
            chain = " → ".join([*scope.stack, kind])
            self.error(loc.at(), full, f"block `{kind}` uses itself ({chain})",
                       "a block cannot contain itself", code="recursive-block")
            return broken()
        if len(scope.stack) >= self.limits.block_depth:
            self.error(loc.at(), full, f"blocks nest more than {self.limits.block_depth} deep "
                       f"(limit `block_depth`) at `{kind}`", limits.raise_hint("block_depth"),
                       code="limit")
            return broken()
        block, body_doc = found.definition, found.raw
        given = self.block_args(kind, block, value, env, full, loc)
        missing = [p for p, default in block.params.items() if default is None and p not in given]
        if missing:
            self.error(loc.at(), full, f"block `{kind}` needs parameter"
                       f"{'s' if len(missing) > 1 else ''} {quote_list(missing)}",
                       code="missing-key")
            return broken()
        if not wired:
            return broken()
        if len(inputs) != len(block.inputs):
            entry = loc.entry
            at = self.source.pos(entry, "from") if isinstance(entry, dict) and "from" in entry \
                else loc
            self.error(at, full, f"block `{kind}` reads {len(block.inputs)} input"
                       f"{'s' if len(block.inputs) > 1 else ''} ({', '.join(block.inputs)}) "
                       f"but gets {len(inputs)}", code="arity")
            return broken()
        memo = found.instances
        if memo.get(None) is not self.limits:  # recorded under other limits: they may differ
            memo.clear()
            memo[None] = self.limits
        key = self.instance_key(found, given, inputs, scope) if not (frozen or init) else None
        key = None if key is None else (*key, checkpoint)
        if key is not None and key in memo:
            return self.replay(memo[key], full, inputs, scope, loc)
        start = (len(self.order), len(self.groups), len(self.multi), len(self.errors))
        caller, self.source = self.source, found.source
        reads, self.shape_reads = self.shape_reads, {}
        try:
            output = self.block_body(kind, block, body_doc, loc, given, full, inputs, scope,
                                     frozen, init, checkpoint)
        except _UnknownShape:
            return broken()
        finally:
            self.source = caller
            reads, self.shape_reads = self.shape_reads, {**reads, **self.shape_reads}
        if key is not None and len(self.errors) == start[3]:
            if len(memo) > MEMO_SIZE:
                memo.clear()
                memo[None] = self.limits
            memo[key] = _Instance(
                full, tuple(inputs), scope.groups, output,
                [self.nodes[name] for name in self.order[start[0]:]],
                [self.groups[name] for name in list(self.groups)[start[1]:]],
                {name: self.multi[name] for name in list(self.multi)[start[2]:]},
                tuple(reads.items()), self.shapes if self.words(found) & SHAPE_WORDS else {},
                self.vocabs)
        return output

    def instance_key(self, found: BlockSource, given: dict[str, Any], inputs: list[str],
                     scope: _Scope) -> Any:
        """All a block instance's expansion depends on besides its name, its inputs' names
        and the limits (`block` keeps instances per limits), so that an instance of the same
        key is the same layers renamed: its arguments, the spec's parameters its YAML (or a
        block it calls) may read, its inputs' shapes where it may read them, and the blocks
        calling it. None where one of these is no plain value (a symbolic size), or a shape
        is not known."""
        words = self.words(found)
        values = _plain([sorted(given.items()),
                         [(name, self.globals[name]) for name in sorted(words & self.globals.keys())]])
        if values is None:
            return None
        key: tuple[Any, ...] = (values, scope.stack, tuple(self.multi.get(n) for n in inputs))
        if words & SHAPE_WORDS:
            shapes = []
            for name in inputs:
                try:
                    shape = self.shape_of(name)
                except _UnknownShape:
                    return None
                if not all(type(d) is int for d in shape):
                    return None
                shapes.append((shape, self.vocabs.get(name), isinstance(self.nodes[name].op, Input)))
            key += (tuple(shapes),)
        return key

    def words(self, found: BlockSource) -> frozenset[str]:
        """The words of a block's YAML and of every block it may call, transitively."""
        if id(found) not in self.block_words:
            words, todo = set(found.words), [w for w in found.words if w in self.blocks]
            seen = set(todo)
            while todo:
                more = self.blocks[todo.pop()].words
                words |= more
                todo += [w for w in more if w in self.blocks and w not in seen]
                seen.update(more & self.blocks.keys())
            self.block_words[id(found)] = frozenset(words)
        return self.block_words[id(found)]

    def replay(self, record: _Instance, full: str, inputs: list[str], scope: _Scope,
               call: Locator) -> str:
        """Add a recorded block instance again, named `full` and reading `inputs`; with the
        shapes inferred for its layers when they were recorded, where those are known."""
        wired = dict(zip(record.inputs, inputs, strict=True))

        def renamed(name: str) -> str:
            return wired.get(name) or full + name[len(record.full):]

        for group in record.groups:
            top = group.name == record.full
            self.groups[renamed(group.name)] = Group(
                renamed(group.name), group.block, group.params,
                (scope.groups[-1] if scope.groups else None) if top else renamed(group.parent or ""),
                call if top else group.call, group.checkpoint)
        shapes = bool(record.shapes) and len(self.shapes) == len(self.order) and all(
            node.name in record.shapes for node in record.nodes)
        outer = len(record.groups_above)
        for node in record.nodes:
            name = self.add(Node(renamed(node.name), node.op, tuple(map(renamed, node.inputs)),
                                 node.loc, node.kind,
                                 (*scope.groups, *map(renamed, node.groups[outer:])), node.frozen,
                                 node.init, tie=None if node.tie is None else renamed(node.tie)))
            if shapes:
                self.shapes[name] = record.shapes[node.name]
                if node.name in record.vocabs:
                    self.vocabs[name] = record.vocabs[node.name]
        self.multi.update((renamed(name), count) for name, count in record.multi.items())
        self.shape_reads.update(((renamed(name), dim), value)
                                for (name, dim), value in record.reads)
        return renamed(record.output)

    def block_body(self, kind: str, block: BlockDef, body_doc: Any, call: Locator,
                   given: dict[str, Any], full: str, inputs: list[str], scope: _Scope,
                   frozen: bool, init: Init | None, checkpoint: bool) -> str:
        """Expand a block's layers (in the file that defines them) under `full`."""
        # Lexical scope: the spec's parameters and the block's own, never its caller's; and
        # the shapes of the block's inputs, unless a parameter takes their names.
        seen = {**self.input_shapes(inputs), **self.globals, **given}
        inner_env = self.params(block.params, seen, body_doc, "params", full, given=given)
        self.groups[full] = Group(full, kind, given, scope.groups[-1] if scope.groups else None,
                                  call, checkpoint)
        names = dict(zip(block.inputs, inputs, strict=True))
        inner = _Scope(f"{full}.", inner_env, names, inputs[0] if inputs else None,
                       (*scope.groups, full), (*scope.stack, kind), frozen, init)
        inner.declared = dict.fromkeys(block.inputs, self.source.pos(body_doc, "inputs"))
        self.body(_raw(body_doc, "layers", block.layers), inner, body_doc, "layers")
        if block.output is not None:
            return self.resolve(block.output, inner, self.source.pos(body_doc, "output"),
                                full) or inner.last or full
        return inner.last or full

    def input_shapes(self, inputs: list[str]) -> dict[str, expr.Lazy]:
        """What a block reads of its inputs' shapes (per sample, batch excluded): `cin`,
        the first input's channels (its first dimension); `in_shape`, its whole shape as a
        list; `in_shapes`, one such list per input. Each is inferred only when read."""
        if not inputs:
            return {}
        first = inputs[0]
        return {"cin": expr.Lazy(lambda: self.read(first, 0)),
                "in_shape": expr.Lazy(lambda: self.read(first)),
                "in_shapes": expr.Lazy(lambda: [self.read(i) for i in inputs])}

    def read(self, name: str, dim: int | None = None) -> Any:
        """What a block reads of layer `name`'s shape: one dim, or all as a list. Sizes
        that are symbolic (`netspec.sizes`) stay so through expressions, and are fixed to
        their example value (guarded) where a layer's argument takes them."""
        self.shape_reads[(name, dim)] = None  # unknown, unless it is inferred
        shape = self.shape_of(name)
        self.shape_reads[(name, dim)] = shape[0] if dim == 0 else tuple(shape)
        return shape[0] if dim == 0 else list(shape)

    def block_args(self, kind: str, block: BlockDef, value: Any, env: dict[str, Any],
                   full: str, loc: Locator) -> dict[str, Any]:
        """The parameters an invocation sets, evaluated in the caller's scope."""
        names = tuple(block.params)
        if value is None:
            raw: dict[str, Any] = {}
        elif isinstance(value, dict):
            raw = dict(value)
        else:
            items = value if isinstance(value, list) else [value]
            if len(items) > len(names):
                self.error(loc.at(), full, f"block `{kind}` takes at most {len(names)} "
                           f"parameters ({', '.join(names)}), found {len(items)}",
                           code="bad-short-form")
                items = items[:len(names)]
            raw = dict(zip(names, items, strict=False))
        out = {}
        split = any(isinstance(v, str) and v.count("(") > v.count(")") for v in raw.values())
        for key, v in raw.items():
            where = self.source.pos(value, key) if isinstance(value, dict) else loc.at()
            if split and not IDENTIFIER.match(str(key)):
                continue  # `{c: max(8, 4)}` read as `c: max(8` and `4)`: the first one says so
            if key not in block.params:
                hint = did_you_mean(key, names) or (f"`{kind}` takes: {quote_list(names, near=key)}"
                                                    if names else f"`{kind}` takes no parameters")
                self.error(self.source.key_where(value, key) if isinstance(value, dict) else where,
                           full, f"unknown parameter `{clipped(str(key))}` for block `{kind}`", hint,
                           code="unknown-key")
                continue
            evaluated = self.substitute(v, env, where, full)
            if evaluated is not _FAILED:
                out[key] = evaluated
        return out

    def params(self, declared: dict[str, Any], env: dict[str, Any], doc: Any, key: str,
               path: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameter environment: given values, else defaults evaluated in order."""
        env = dict(env)
        given = given if given is not None else {}
        for name, default in declared.items():
            if name in given or default is None:  # a block's required ones are checked by block()
                continue
            where = self.source.pos(doc, key, name)
            evaluated = self.substitute(default, env, where, path)
            if evaluated is not _FAILED:
                env[name] = evaluated
        return env

    def chosen_params(self, doc: Any) -> dict[str, Any]:
        """The spec's parameters, evaluated in order: each the value set by name
        (`Spec.choice`), else the chosen scale's, else its default; so a parameter whose
        default reads others follows the values they were given. A value given instead of
        a default must have the default's type (a number for a number, ...)."""
        choice, declared = self.spec.choice, self.spec.params
        scale = self.scale(doc, choice.scale)
        for name in choice.values:
            if name not in declared:
                hint = did_you_mean(name, declared) or (
                    f"the spec's parameters: {quote_list(declared, near=name)}" if declared
                    else "the spec declares no `params:`")
                self.error(self.source.key_where(doc, "params"), "", f"no parameter "
                           f"`{clipped(str(name))}` to set", hint, code="unknown-key")
        env: dict[str, Any] = {}
        for name, default in declared.items():
            where = self.source.pos(doc, "params", name)
            if name in choice.values:
                value, origin = choice.values[name], f"parameter `{name}` is set to"
            elif name in scale:
                value, origin = scale[name], f"scale `{choice.scale}` sets `{name}` to"
                where = self.source.pos(doc, "scales", choice.scale, name)
            elif default is None:
                continue
            else:
                value, origin = default, ""
            evaluated = self.substitute(value, env, where, "")
            if origin:  # on an error, the default: its readers are not wrong too
                default = self.quietly(default, env, where)
                if evaluated is _FAILED or not self.same_kind(evaluated, default, origin, where):
                    evaluated = _FAILED if default is None else default
            if evaluated is not _FAILED:
                env[name] = evaluated
        return env

    def scale(self, doc: Any, name: str | None) -> dict[str, Any]:
        """The values of the spec's scale `name` (none when None or not a scale: an error)."""
        scales = self.spec.scales
        if name is None or name in scales:
            return scales[name] if name is not None else {}
        hint = ("`--scale all` (`netspec.check_scales`) checks every scale; name one here"
                if name == ALL_SCALES else did_you_mean(name, scales)
                or (f"its scales: {quote_list(scales, near=name)}" if scales
                    else "the spec declares no `scales:`"))
        self.error(self.source.key_where(doc, "scales"), "", f"no scale named "
                   f"`{clipped(str(name))}`", hint, code="unknown-key")
        return {}

    def same_kind(self, value: Any, default: Any, origin: str, where: At) -> bool:
        """Whether `value` is of the kind of the parameter's `default` (anything is where
        the default is null or cannot be computed; an integer is a number); an error if not.
        `origin` says who gave the value (`parameter `x` is set to`)."""
        wanted, found = _kind(default), _kind(value)
        if wanted is None or found == wanted or (wanted == "a number" and found == "an integer"):
            return True
        self.error(where, "", f"{origin} {shown(value)}, "
                   f"{found or 'a ' + type(value).__name__}, but its default is {wanted}",
                   f"give it {wanted}", code="invalid-value")
        return False

    def quietly(self, value: Any, env: dict[str, Any], where: At) -> Any:
        """`value` evaluated as a default, its errors left unsaid (None when it fails)."""
        errors, self.errors = self.errors, []
        try:
            evaluated = self.substitute(value, env, where, "")
        finally:
            self.errors = errors
        return None if evaluated is _FAILED else evaluated

    # -- expressions -------------------------------------------------------------------

    def evaluate(self, value: Any, env: dict[str, Any], where: At, prefix: str) -> Any:
        result = self.substitute(value, env, where, prefix.rstrip("."), force=True)
        return None if result is _FAILED else result

    def substitute(self, value: Any, env: dict[str, Any], where: At, path: str,
                   force: bool = False) -> Any:
        """Replace parameter references and expressions in a value; literals pass through.

        A bare word is a parameter when one has that name, else a literal (`same`,
        `bilinear`). A longer string is an expression when every name it reads is a
        parameter; one reading a near-miss of a parameter is an error with a hint, and one
        reading only unknown words is a literal (`nearest-exact`). With `force` (`repeat`,
        `if`) every string is an expression.
        """
        if isinstance(value, list):
            items = [self.substitute(v, env, where, path, force) for v in value]
            return _FAILED if any(v is _FAILED for v in items) else items
        if not isinstance(value, str):
            return value
        if not force and IDENTIFIER.match(value):
            return expr.resolved(env.get(value, value))
        try:
            names = expr.names_in(value)
        except expr.ExprError as exc:
            if not force and not _looks_like_expression(value):
                return value
            self.error(where, path, str(exc), exc.hint, code=exc.code)
            return _FAILED
        unknown = names - env.keys() - {"True", "False", "None"}
        near_miss = any(did_you_mean(n, env) for n in unknown)
        if unknown and not force and not near_miss and not _looks_like_expression(value):
            return value
        try:  # evaluation names the unknown parameter or the refused construct
            return expr.evaluate(value, env)
        except expr.ExprError as exc:
            self.error(where, path, str(exc), exc.hint, code=exc.code)
            return _FAILED


_FAILED = object()


def _plain(value: Any) -> Any:
    """`value` as a hashable key whose equality is the value's (`True` and `1`, `1` and
    `1.0` differ), or None when it holds anything but numbers, strings, booleans, None,
    lists and tuples (a symbolic size, say)."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is list or kind is tuple:
        items = [_plain(v) for v in value]
        return None if None in items else (kind, tuple(items))
    return None


_SCALARS = frozenset({bool, int, float, str, type(None)})


def _kind(value: Any) -> str | None:
    """A parameter value's kind as messages name it (None: any kind goes in its place)."""
    for kind, name in ((bool, "true or false"), (int, "an integer"), (float, "a number"),
                       (list, "a list"), (str, "a word")):
        if isinstance(value, kind):
            return name
    return None


def _raw(doc: Any, key: str, validated: list[Any]) -> list[Any]:
    """The layer list as read from YAML: validation copies lists, and positions are kept
    for the originals."""
    raw = doc.get(key) if isinstance(doc, dict) else None
    return raw if isinstance(raw, list) else validated


def _flow(value: Any) -> str:
    """A value as YAML flow style writes it: `3`, `[1, 2]`, `true`, `"max(8, c)"`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str) and ("," in value or ":" in value):
        return f'"{value}"'
    return "null" if value is None else str(value)


def _looks_like_expression(text: str) -> bool:
    """Whether a string is meant as arithmetic or code rather than a word such as `same` or
    `nearest-exact`."""
    return any(c in text for c in "()[]*/+%<>=.") or "__" in text or text.strip().startswith("-")
