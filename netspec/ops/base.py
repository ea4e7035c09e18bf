"""The `Op` base class: what every layer type defines, in one place.

An op is a frozen pydantic model (its fields are the spec's arguments, unknown keys are
refused) whose methods give everything the pipeline needs about it:

    infer(x)            -> output shape (per sample), or ShapeError naming the argument at fault
    cost(x, y)          -> parameters, buffers and multiply-accumulates (DESIGN.md's convention)
    grad_cost(x, y, ...) -> the multiply-accumulates of its backward pass (netspec.train_step)
    saved(x, y, ...)    -> what autograd keeps of it for the backward pass (netspec.train_step)
    aliases(x, y)       -> the input whose memory its output shares (a view, an in-place op)
    differentiable_inputs(n) -> which inputs a gradient flows back into
    receptive_field()   -> how the receptive field grows through it
    notes(x, y)         -> warnings worth a person's attention
    label()             -> the short text drawings and tables show
    to_torch(torch, x, y) -> the torch module (or function call) computing it
    torch_class         -> the torch.nn class it compiles to (None for functional ops)
    from_torch(module)  -> its arguments read back off such a module (`netspec import`)

`to_torch` receives the `torch` package from the backend: op modules never import torch, so
checking a spec stays free of it.
"""


import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
)

from netspec.shapes import Shape, dims_label, fmt_shape

PosInt = Annotated[int, Strict(), Field(ge=1)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]


def _int_list_validator(minimum: int | None):
    def check(value: Any) -> int | tuple[int, ...]:
        items = value if isinstance(value, list | tuple) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise ValueError(f"expected an integer or a list of integers, found {value!r}")
        if minimum is not None and any(v < minimum for v in items):
            raise ValueError(f"must be at least {minimum}, found {value!r}")
        return tuple(items) if isinstance(value, list | tuple) else value

    return check


def _int_list_schema(minimum: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        item["minimum"] = minimum
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


TUPLES_AS_LISTS = PlainSerializer(lambda value: list(value) if isinstance(value, tuple) else value,
                                  when_used="json")
"""A per-dimension tuple dumps to JSON as the list a spec writes (without it, pydantic
warns that a list is not the field's `tuple[int, ...]`)."""


def int_or_list(minimum: int | None) -> Any:
    """An int applying to every spatial dimension, or one int per dimension."""
    return Annotated[
        int | tuple[int, ...],
        PlainValidator(_int_list_validator(minimum)),
        TUPLES_AS_LISTS,
        WithJsonSchema(_int_list_schema(minimum)),
    ]


PosInts = int_or_list(1)
NonNegInts = int_or_list(0)
AnyInts = int_or_list(None)


TokenIds = Literal["refused", "kept", "looked_up", "ignored"]
Autocast = Literal["low", "float32", "same"]
"""How autocast (bf16/fp16 mixed precision) runs a layer: in 16 bits, its float inputs cast
down first (`low`: convolutions, linear layers); in float32, its 16-bit inputs cast up first
(`float32`), or from float32 tables; in its inputs' dtype, the widest where they differ
(`same`: what autocast leaves alone)."""


class Tensor(NamedTuple):
    """An op's view of one input: its per-sample shape and the layer that produced it."""

    shape: Shape
    src: str
    network_input: bool = False
    """Whether `src` is one of the network's inputs (a shape the user wrote, not one inferred)."""
    on_grid: bool = False
    """Whether its dims after the first are a spatial grid (it has a receptive field: not
    flattened, permuted or reshaped since the input)."""
    vocab: int | None = None
    """For integer token ids, the vocabulary size (ids are below it); None for float values."""


class Cost(NamedTuple):
    """Parameters (all trainable by default), buffers and multiply-accumulates of one layer.

    `bias_adds` counts the additions of a bias, one per output element: zero MACs by
    DESIGN.md's convention (torchvision's, FlopCounterMode's), but counted by tools such as
    ptflops, so reports show both."""

    params: int = 0
    buffers: int = 0
    macs: int = 0
    bias_adds: int = 0
    attention_macs: int = 0
    """The share of `macs` in attention's products (scores Q K^T, weights times V)."""
    scores: int = 0
    """Elements of the attention scores (heads x T x S per sample), held in training."""


class GradCost(NamedTuple):
    """Multiply-accumulates of one layer's backward pass, by `Cost`'s convention (a
    product's MAC counts 1; bias gradients, norms, activations, pooling, merges 0), as
    torch's FlopCounterMode counts the backward kernels torch runs.

    `input_macs`: the products giving gradients of activations: the layer's inputs that
    require grad, and the tensors inside it (attention's output projection, queries, keys,
    values and scores). `weight_macs`: those giving its weights' gradients, when trained."""

    input_macs: int = 0
    weight_macs: int = 0

    @classmethod
    def of_product(cls, macs: int, input_grad: bool, weight_grad: bool) -> "GradCost":
        """The backward of one product with weights (conv, linear) of `macs` forward MACs:
        the input's gradient and the weights' are each a product of as many MACs."""
        return cls(macs if input_grad else 0, macs if weight_grad else 0)


class Saved(NamedTuple):
    """What autograd keeps of one layer for its backward pass, per sample, as torch does on
    the CPU (found with `torch.autograd.graph.saved_tensors_hooks`: tests/test_train_memory.py).
    Its parameters are not counted here (they are the weights).

    A tensor that several layers keep is held once, so tensors are named by whose memory
    they are: `inputs`, the indices of the layer's inputs it keeps (the memory of the layer
    that made each, or of the tensor a view of it reads); `output`, its own output. The
    tensors it makes for itself are counted in elements: `floats` (float32: intermediates,
    statistics, a channel dropout's noise), `indices` (int64: max pooling's argmax) and
    `masks` (dropout's mask: a float tensor on the CPU, bool on CUDA); `stats`, float32
    elements whatever the precision (a norm's statistics per sample, kept in float32 under
    autocast too). `fixed` counts the float32 elements it keeps whatever the batch (batch
    norm's mean and inverse deviation, rotary embedding's tables)."""

    inputs: tuple[int, ...] = ()
    output: bool = False
    floats: int = 0
    indices: int = 0
    masks: int = 0
    stats: int = 0
    fixed: int = 0


class Scratch(NamedTuple):
    """What a layer's backward holds at its most, in the middle of it: `floats` float32
    elements per sample (intermediate gradients, the input gradients made so far), and
    the elements of its trained weights whose gradients exist by then; `released`, float32
    elements per sample of what it keeps and of its output's gradient that it frees before
    its last input gradient is made, less what it then holds besides them (an n-ary mul
    frees each pairwise product's as it goes); `frees_output_grad`, whether its output's
    gradient is freed by its most: the tensor that gradient is (a slice of a concat's, or
    its own), where no other layer holds it still; `early_input_grad`, float32 elements per
    sample of a part of its first input's gradient it hands on before its most (held
    through it, among `floats`), which torch adds at once into a gradient of that input
    already held."""

    floats: int = 0
    weights: int = 0
    released: int = 0
    frees_output_grad: bool = False
    early_input_grad: int = 0


Ratio = int | Fraction


def ratio(a: int, b: int) -> Ratio:
    """a / b exactly: an int when b divides a (the common case, and much cheaper)."""
    return a // b if a % b == 0 else Fraction(a, b)


class RF(NamedTuple):
    """Receptive field of one unit, per spatial dimension, in input pixels.

    `size` is how many input pixels one output unit sees, `stride` how far apart in the
    input two neighbouring output units are (fractional after upsampling).
    """

    size: tuple[Ratio, ...]
    stride: tuple[Ratio, ...]

    def window(self, kernels: Sequence[int], strides: Sequence[Ratio]) -> "RF":
        """The field after a window of `kernels` (effective spans) moved by `strides`."""
        size = tuple(r + (k - 1) * j for r, k, j in zip(self.size, kernels, self.stride, strict=True))
        return RF(size, tuple(j * s for j, s in zip(self.stride, strides, strict=True)))


class TorchCall(NamedTuple):
    """A layer computed by a function rather than a module: `fn(*inputs, **kwargs)`, or
    `fn(inputs, **kwargs)` with `packed` (torch.cat), or folded pairwise with `pairwise`
    (`a + b + c`)."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    packed: bool = False
    pairwise: bool = False


class ShapeError(Exception):
    """The op cannot take its input; `key` names the argument to point the error at."""

    def __init__(self, message: str, key: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.key = key
        self.hint = hint


class Note(NamedTuple):
    """A warning an op raises about itself: `key` is the argument to point it at."""

    code: str
    message: str
    key: str | None = None


class Op(BaseModel):
    """Base of every layer type; subclasses declare `op: Literal[...]` and their arguments."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, defer_build=True, populate_by_name=True
    )

    op: str
    torch_class: ClassVar[str | None] = None
    """The torch.nn class the op compiles to; None when it compiles to a function."""
    torch_names: ClassVar[dict[str, str]] = {}
    """Arguments its torch module holds under another name (`out` as `out_channels`):
    what `from_torch` reads."""
    torch_imports: ClassVar[tuple[str, ...]] = ()
    """Classes of other libraries computing the op, as `module.Class` (torchvision's
    ShiftedWindowAttention): `netspec import` reads such a module as one layer, its
    arguments by `from_torch`, where the op's module holds the same tensors."""
    family: ClassVar[str] = "other"
    """Colour group for drawings: conv, pool, norm, activation, dropout, linear, resize, merge."""
    prefix: ClassVar[str] = ""
    """Stem of automatic names (`conv` -> conv1, conv2); the op name when empty."""
    positional: ClassVar[tuple[str, ...]] = ()
    """Arguments a short form fills in order: `- linear: 120`, `- maxpool2d: [3, 2]`."""
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    """Fewest and most inputs (None: no upper bound)."""
    short_inputs: ClassVar[bool] = False
    """The short form lists inputs, not arguments: `- add: [x, conv2]`."""
    autocast_as: ClassVar[Autocast | None] = None
    """How autocast runs it (`autocast`)."""
    float32_on_cuda: ClassVar[bool] = False
    """CUDA's autocast runs it in float32 (torch's list: layer and group norm, softmax)."""
    token_ids: ClassVar[TokenIds] = "refused"
    """What the op does with inputs of token ids: computes on floats only (`refused`),
    moves ids around and gives ids (`kept`: reshapes, slices, concat), turns ids into
    vectors (`looked_up`: embedding, which takes nothing else), or reads only the batch
    size (`ignored`: parameter)."""
    reorders: ClassVar[bool] = False
    """Its output is a view of its input in another order (permute, transpose): a reshape
    of it copies (where `reorders_data`)."""
    reshapes: ClassVar[bool] = False
    """Its output is its input in another shape (flatten, reshape, unflatten): a view, or a
    copy of a reordered input."""
    folds: ClassVar[bool] = False
    """It multiplies its (first) input, folded to a matrix, by a weight (linear, attention's
    projections): what it keeps of a reordered input is a copy of its own."""
    contiguous: ClassVar[bool] = False
    """Its kernel reads a contiguous input, copied first where it is a strided view (group
    norm): what it keeps of such an input is the copy."""

    @classmethod
    def kind(cls) -> str:
        """The op's name in specs: `conv2d`."""
        return cls.model_fields["op"].default

    @classmethod
    def stem(cls) -> str:
        return cls.prefix or cls.kind()

    def pieces(self) -> int | None:
        """How many layers an entry of this op expands to, one per output (`chunk: 2`
        without an `index` gives `name.0` and `name.1`); None for one layer."""
        return None

    def infer(self, x: Sequence[Tensor]) -> Shape:
        """Per-sample output shape for inputs `x`; raises ShapeError when they do not fit."""
        return x[0].shape

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        """Parameters, buffers and MACs for inputs `x` producing `y` (zero by default)."""
        return Cost()

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """MACs of this layer's backward pass for inputs `x` producing `y`, when a gradient
        reaches its output: `needs_input_grad[i]` says whether input i requires one, and
        `trainable` whether the layer's weights are trained (zero by default: the ops whose
        backward torch's flop counter counts nothing for)."""
        return GradCost()

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """What autograd keeps of this layer for its backward pass (see `Saved`), when its
        output requires grad; arguments as `grad_cost`'s. Nothing by default: the ops whose
        backward needs no tensor (add, concat, views, padding, interpolation)."""
        return Saved()

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """Float32 elements per sample its forward pass holds at its most besides its inputs
        and what it keeps (arguments as `grad_cost`'s; `strided`: its first input is a view
        laid out otherwise than a tensor of its shape), where that is more than its output:
        tensors made and freed within it. None by default: a kernel that writes its output
        and no more."""
        return 0

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """The most its backward pass holds at once besides what it keeps and its output's
        gradient, where that is more than the input gradients it returns (arguments as
        `grad_cost`'s): measured against torch per op (tests/test_train_memory.py). None
        by default: a kernel that writes the input gradients and no more."""
        return Scratch()

    def storage(self, x: Sequence[Shape], y: Shape) -> int:
        """Elements of the memory its output, when of its own, occupies: its shape's, unless
        the output is a view into a larger result (window attention's crop of the map
        padded to whole windows)."""
        return math.prod(y)

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        """The input whose memory the output is (a view of it, or the input changed in
        place), or None for an output of its own."""
        return None

    def partial_results(self, x: Sequence[Shape], needs_input_grad: Sequence[bool]
                        ) -> list[tuple[int, bool]] | None:
        """For an op torch folds pairwise from the left over three or more inputs (`a + b
        + c`): float32 elements per sample of each result before the last, and whether
        autograd keeps it. The compiled module frees each input once its last pair is
        made. None for an op of one kernel."""
        return None

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """Whether torch hands its output back as a view (a tensor with a `_base`), not as a
        tensor of its own or as its input itself: a view op's output (a permute, a slice, a
        crop), or a result its kernel reshapes (instance norm a batch norm's, a 1-d pool a
        2-d pool's, a linear layer with a bias a matrix's); `strided` as `forward_scratch`'s.
        An in-place layer writing into a view makes autograd's backward copy the gradient
        of the whole tensor viewed (train_step: `CopySlices`)."""
        return False

    def reorders_data(self, x: Sequence[Shape], y: Shape) -> bool:
        """Whether its output, a view, is laid out so that folding it to a matrix (or
        reshaping it) copies: its dims in another order (`reorders`: permute and transpose
        say when), or part of a dim before the last (a slice, a piece, a crop)."""
        shared = self.aliases(x, y)
        if self.reorders or shared is None or len(x[shared]) != len(y):
            return self.reorders
        return any(n < m for n, m in zip(y[:-1], x[shared][:-1], strict=True))

    def passes_gradient(self, x: Sequence[Shape], y: Shape) -> tuple[bool, ...]:
        """Per input, whether its gradient is the output's gradient itself (or a view of
        it), so the backward makes no tensor for it: the input a view of the whole reads
        (not an in-place op's, whose backward makes one; not a slice's, whose backward
        makes one of the input's size)."""
        shared = self.aliases(x, y)
        whole = shared is not None and math.prod(x[shared]) == math.prod(y) and \
            not getattr(self, "inplace", False)
        return tuple(whole and i == shared for i in range(len(x)))

    def autocast(self, device: str, x: Sequence[Shape]) -> Autocast | None:
        """How autocast runs this layer on `device` (`cpu` or `cuda`; see `Autocast`), for
        inputs `x`: what the training step's memory counts its tensors in under bf16/fp16
        (measured against torch's CPU autocast per op, tests/test_train_memory.py).
        `autocast_as` by default (float32 on CUDA where `float32_on_cuda`); None: not
        described, so counted in float32 with a float32 copy of each input it reads (an
        approximation, not a bound: the README's figures)."""
        return "float32" if self.float32_on_cuda and device == "cuda" else self.autocast_as

    def differentiable_inputs(self, inputs: int) -> tuple[bool, ...]:
        """Per input (of `inputs`), whether the output depends on its values, so that a
        gradient flows back into it; False for an input read only for its shape."""
        return (True,) * inputs

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """The output's receptive field; pointwise ops keep their input's."""
        return rf[0]

    def weight_shape(self, x: Sequence[Shape], y: Shape) -> Shape | None:
        """The shape of the torch module's `weight`, for ops whose weight another layer may
        share (`tie:`); None for the others."""
        return None

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        """Warnings about this layer at these shapes (none by default)."""
        return []

    def floor_slacks(self, x: Sequence[Shape]) -> list[int]:
        """For an op whose output size rounds down: per rounded dimension, how many input
        rows it may leave unread before it drops real input (`shapes.floor_slack`); the
        input is read whole when every slack is at least 0. Empty for other ops."""
        return []

    def label(self) -> str:
        """Short text for tables and drawings: the op and its key arguments."""
        return self.kind()

    def label_at(self, x: Sequence[Shape], y: Shape) -> str:
        """The label with what the shapes tell (attention's head size); `label()` unless
        the op says more."""
        return self.label()

    def torch_module(self, inputs: int) -> str | None:
        """The torch.nn class this layer compiles to when it reads `inputs` inputs; None
        when a function computes it (`to_torch` then returns a TorchCall)."""
        return self.torch_class

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        """Keyword arguments of `torch_class`: by default the op's own, named as torch names
        them (`inplace`, `negative_slope`, `p`, `dim`...)."""
        return self.model_dump(exclude={"op"})

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        """The `torch.nn.Module` (or `TorchCall`) computing this layer for inputs `x`."""
        return getattr(torch.nn, self.torch_class)(**self.torch_args(x, y))  # type: ignore[arg-type]

    @classmethod
    def from_torch(cls, module: Any) -> dict[str, Any]:
        """The op's arguments as a module of `torch_class` holds them, for reading a torch
        model back as a spec (`netspec import`): each argument from the attribute of its
        name (`torch_names` maps those torch names otherwise), a tensor as true and None as
        false where the argument is a flag (`bias`), tuples as lists. Arguments the module
        does not hold are left to their defaults; the importer checks that the op rebuilds
        the very module."""
        args: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            attr = cls.torch_names.get(name, name)
            if name == "op" or not hasattr(module, attr):
                continue
            value = getattr(module, attr)
            if isinstance(info.default, bool) and not isinstance(value, bool):
                value = value is not None  # a weight tensor, or None: whether there is one
            args[info.alias or name] = list(value) if isinstance(value, tuple) else value
        return args

    def args(self) -> dict[str, Any]:
        """The arguments that differ from their defaults, as a spec would write them."""
        return self.model_dump(exclude_defaults=True, exclude={"op"}, by_alias=True)


def returned_anyway(op: Op, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                    trainable: bool, strided: bool = False) -> int:
    """Float32 elements per sample a layer keeping nothing (no backward runs through it)
    still gets from its kernel, its output among them, until the kernel returns: the
    statistics a norm would keep, a max pool's int64 indices (two floats' bytes each), the
    contiguous copy of a strided input a kernel reads (`Op.contiguous`); 0 for a layer
    that keeps (`Op.forward_scratch`)."""
    if any(needs_input_grad) or trainable:
        return 0
    would = op.saved(x, y, (True,) * len(x), True)
    copy = math.prod(x[0]) if op.contiguous and strided else 0
    return math.prod(y) + would.floats + would.stats + 2 * would.indices + copy


def ids_out(op: Op, x: Sequence[Tensor]) -> int | None:
    """The vocabulary of the op's output when it holds token ids (None: float values), or
    ShapeError when the op cannot take these inputs (see `Op.token_ids`)."""
    ids = [t for t in x if t.vocab is not None]
    if op.token_ids == "looked_up":
        floats = [t for t in x if t.vocab is None]
        if floats:
            raise ShapeError(f"{op.kind()} looks up token ids, but {floats[0].src} gives float "
                             "values", hint="declare the input as ids: "
                                            "`input: {tokens: [T], vocab: V}`")
        return None
    if not ids or op.token_ids == "ignored":
        return None
    if op.token_ids == "kept" and len(ids) == len(x):
        return max(t.vocab for t in ids)  # type: ignore[type-var]
    what = "mixes token ids and float values" if op.token_ids == "kept" else \
        "computes on float values"
    raise ShapeError(f"{op.kind()} {what}, but {ids[0].src} holds token ids (vocabulary "
                     f"{ids[0].vocab})", hint="turn ids into vectors first with `embedding`")


def broadcast(a: Shape, b: Shape) -> Shape | int:
    """The shape torch broadcasts equal-rank shapes `a` and `b` to (a 1 stretches), or the
    index of the first dim where they clash."""
    for i, (m, n) in enumerate(zip(a, b, strict=True)):
        if m != n and 1 not in (m, n):
            return i
    return tuple(max(m, n) for m, n in zip(a, b, strict=True))


def expect_rank(op: Op, t: Tensor, *ranks: int) -> None:
    """Refuse an input whose per-sample rank is not one of `ranks`."""
    if len(t.shape) not in ranks:
        want = " or ".join("[" + ",".join(dims_label(r)) + "]" for r in ranks)
        raise ShapeError(f"{op.kind()} expects a {want} input but {t.src} gives "
                         f"{fmt_shape(t.shape)}", hint=_rank_hint(op, t, ranks, want))


def _rank_hint(op: Op, t: Tensor, ranks: Sequence[int], want: str) -> str | None:
    sibling = _sibling(op, len(t.shape))
    if t.network_input:  # the shape is the user's: fix it, not the layers
        counts = " or ".join(str(r) for r in ranks)
        more = sibling and len(t.shape) > max(ranks)  # fewer numbers are more likely a slip
        other = f", or use `{sibling}` for {fmt_shape(t.shape)}" if more else ""
        return (f"the net's first layer is {op.kind()}, which needs {want} ({counts} numbers): "
                f"give `{t.src}` {counts} numbers{other}")
    if sibling:
        return f"for a [{','.join(dims_label(len(t.shape)))}] input use `{sibling}`"
    if len(t.shape) > max(ranks):
        return "add a `flatten` (or pooling) layer before it"
    if len(t.shape) < min(ranks):
        return "it needs spatial dimensions: place it before `flatten`/`linear`"
    return None


def _sibling(op: Op, rank: int) -> str | None:
    """The op of the same family for inputs of `rank` (`conv3d` for conv2d on [C,D,H,W])."""
    from netspec.ops import OPS

    kind = op.kind()
    stem, digit = kind[:-2], kind[-2:-1]
    if not (kind.endswith("d") and digit.isdigit()) or rank < 2:
        return None
    other = f"{stem}{rank - 1}d"
    return other if other in OPS and other != kind else None


def channels_match(op: Op, declared: int | None, found: int, t: Tensor, key: str = "in") -> None:
    """Check a declared input channel/feature count against the inferred one."""
    if declared is not None and declared != found:
        what = "input features" if op.kind() == "linear" else "input channels"
        raise ShapeError(f"`{key}` says {declared} {what} but {t.src} gives {found}",
                         key=key, hint="drop `in`: netspec infers it")


def spatial(value: int | tuple[int, ...], dims: int, key: str) -> tuple[int, ...]:
    """Expand an int-or-list argument to one value per spatial dimension."""
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ShapeError(f"`{key}` needs one value per spatial dimension ({dims}), "
                         f"found {len(value)}", key=key)
    return value


def fmt_pair(values: tuple[int, ...]) -> str:
    """`3x3` for a kernel, `3` in 1-D."""
    return "x".join(str(v) for v in values)


def fmt_step(values: tuple[int, ...]) -> str:
    """A stride or dilation: `2` when every dimension agrees (`/2`), else `2x1`."""
    return str(values[0]) if len(set(values)) == 1 else fmt_pair(values)


def sample_dim(dim: int, shape: Shape, key: str = "dim") -> int:
    """Map a torch dim (batch is dim 0; negatives count from the end) to a per-sample index."""
    rank = len(shape) + 1
    if not -rank <= dim < rank:
        raise ShapeError(f"`{key}` {dim} is out of range for a {rank}-d tensor "
                         f"(batch + {fmt_shape(shape)})", key=key)
    index = dim % rank
    if index == 0:
        raise ShapeError(f"`{key}` {dim} is the batch dimension; netspec layers work per sample",
                         key=key, hint="dims count the batch as 0: channels are dim 1")
    return index - 1
