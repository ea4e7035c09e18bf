"""Multi-head attention with its projections, as transformers use it.

multihead_attention: `[*B, T, D]` (self-attention), or `[*B, T, D]` and `[*B, S, E]`
    (cross-attention: queries from the first input, keys and values from the second; S = T
    and E = D for self-attention) -> `[*B, T, out]` (out = D by default).
    H `heads` of `head_dim` d (D / H by default); G `kv_heads` (H by default; fewer share
    each key and value head among H / G query heads: grouped-query attention).
    params: queries D*H*d, keys and values 2*E*G*d, output H*d*out, plus a bias of each
        output unless `bias: false`.
    MACs, per sample and with P = prod(B): the projections P*(T*D*H*d + 2*S*E*G*d +
        T*H*d*out) and the attention products, scores Q K^T and weights times V, P*H*T*S*d
        each. A causal mask is counted in full, not halved: the math path computes every
        score before masking, and torch's flop counter counts it so.
window_attention (Swin): `[H, W, C] -> [H, W, C]`, self-attention inside each window of
    wh x ww tokens of the map padded to whole windows (T tokens), H heads of C / H.
    params: qkv 3C^2 + 3C, projection C^2 + C, relative position bias (2wh-1)(2ww-1)H;
    buffers: the relative position index, (wh ww)^2. MACs: 4 T C^2 for the projections,
    and T * wh*ww * C for each of the scores and the weighted values.
relative_attention (MaxViT): `[*G, P, D] -> [*G, P, D]`, self-attention inside each of the
    partitions already cut, of P = s x s tokens, H heads of D / H, the scores scaled by
    D^-1/2 (the features', as torchvision's). Counted as window attention over T = prod(G) * P
    tokens in windows of P: params 4D^2 + 4D + (2s-1)^2 H, buffers P^2, MACs 4 T D^2 and
    T * P * D for each of the scores and the weighted values.

Backward, as torch runs it on the CPU (float32) and its flop counter counts it: the
projections like `linear` layers (weight gradients when trained; the output projection's
input gradient always, the others' where their input requires grad), and products of
H*T*S*d MACs each (T*wh*ww*C for windows) for the attention itself. Which products
depends on the kernel F.scaled_dot_product_attention takes:
    fused (the CPU's flash kernel: [*B, T, D] inputs with one leading dim, the batch, and
        no dropout in training): five, whatever requires grad, as torch's
        sdpa_backward_flop_count counts them: the scores recomputed, the gradients of the
        weights and of V, of Q and of K (CUDA's fused kernels count the same);
    math (more leading dims, dropout, the 5-d windows of window and relative attention):
        the autograd of two matmuls: the weights' gradient, V's when the keys and values
        require grad, Q's when the queries do, K's when the keys do.

Saved for the backward, per sample (P = prod(B)), besides the projections' inputs (when
trained) and the rotary tables ((T + S) * d floats whatever the batch):
    fused: Q, K and V (views of the projections' outputs, whose memory is then kept whole:
        T*(H*d + 2*G*d) for the packed one; tensors of their own when rotated, H*T*d and
        G*S*d, or repeated for grouped-query attention, H*S*d each), the output H*T*d and
        its logsumexp H*T; the output projection keeps a copy of the output when Q was
        rotated (the kernel's output is laid out as Q is), else a view of it;
    math: Q and K scaled (H*T*d, H*S*d), V as a copy for the batched product (H*S*d; with
        one head V is a view, and the projection's output is kept whole), the attention
        weights H*T*S (and, with dropout, its mask and the weights dropped, H*T*S each),
        the output projection a copy of the output (T*H*d);
    window attention (math, with its mask): each window's tokens (T*C, a copy), the
        projections' and products' tensors as above (T*C each, T*wh*ww*H weights);
        relative attention the same, but the qkv projection reads the layer's input itself
        (kept when trained), not a copy.
"""


import math
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from netspec.ops.base import (
    RF,
    Autocast,
    Cost,
    GradCost,
    NonNegInts,
    Op,
    PosFloat,
    PosInt,
    PosInts,
    Probability,
    Saved,
    Scratch,
    ShapeError,
    Tensor,
    fmt_pair,
    fmt_step,
    spatial,
)
from netspec.shapes import Shape, fmt_shape


class MultiheadAttention(Op):
    """Scaled dot-product attention over H heads with query, key, value and output
    projections (netspec.backends.modules.Attention, computed by torch's
    F.scaled_dot_product_attention). torch's own nn.MultiheadAttention, called as
    self-attention (`attn(x, x, x)`: torchvision's ViT), is this op with `state_dict: torch`
    (`from_torch`)."""

    op: Literal["multihead_attention"] = "multihead_attention"
    torch_class: ClassVar[str] = "Attention"
    torch_imports: ClassVar[tuple[str, ...]] = ("torch.nn.modules.activation.MultiheadAttention",)
    family: ClassVar[str] = "attention"
    folds: ClassVar[bool] = True
    prefix: ClassVar[str] = "attn"
    positional: ClassVar[tuple[str, ...]] = ("heads",)
    arity: ClassVar[tuple[int, int | None]] = (1, 2)

    heads: PosInt
    head_dim: PosInt | None = None
    """Features per head; D / heads when not given."""
    kv_heads: PosInt | None = None
    """Key and value heads, dividing `heads`; `heads` when not given."""
    out: PosInt | None = None
    """Output features; the input's D when not given."""
    causal: bool = False
    """Each position attends to itself and earlier positions only (self-attention)."""
    dropout: Probability = 0.0
    """Dropout on the attention weights, in training."""
    bias: bool = True
    rotary: bool = False

    def autocast(self, device: str, x: Sequence[Shape]) -> Autocast | None:
        """In 16 bits where the fused kernel runs it; the math path, which computes in
        float32 from copies of Q, K and V, is not described."""
        return "low" if self._fused(x[0]) else None
    """Rotary position embeddings (RoPE, rotating halves) applied to queries and keys."""
    rotary_base: PosFloat = 10000.0
    state_dict: Literal["netspec", "torch"] = "netspec"
    """The keys its tensors are held under: netspec's (`qkv.weight`, `qkv.bias`,
    `out.weight`, `out.bias`; `q` and `kv` for cross-attention), or `torch`: those of torch's
    nn.MultiheadAttention (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
    `out_proj.bias`), whose checkpoints then load as they are (self-attention only). The
    same tensors either way: the counts and the function do not change."""

    def infer(self, x: Sequence[Tensor]) -> Shape:
        for t in x:
            if len(t.shape) < 2:
                raise ShapeError(f"multihead_attention takes sequences [T, D] (or [*B, T, D]), "
                                 f"but {t.src} gives {fmt_shape(t.shape)}",
                                 hint="a sequence of vectors: `embedding`, or `reshape` to [T, D]")
        query, context = x[0].shape, x[-1].shape
        if query[:-2] != context[:-2]:
            raise ShapeError(f"cross-attention of {fmt_shape(query)} from {x[0].src} and "
                             f"{fmt_shape(context)} from {x[1].src}: their leading dims differ")
        if self.state_dict == "torch" and len(x) == 2:
            raise ShapeError("`state_dict: torch` holds nn.MultiheadAttention's packed "
                             "in_proj, one projection of one input: self-attention only",
                             key="state_dict", hint="read one input, or drop `state_dict`")
        if self.causal and len(x) == 2:
            raise ShapeError("`causal` masks a sequence attending to itself; cross-attention "
                             "reads another sequence", key="causal",
                             hint="drop `causal`, or read one input")
        features = query[-1]
        if self.head_dim is None and features % self.heads:
            raise ShapeError(f"`heads` {self.heads} does not divide the {features} features of "
                             f"{x[0].src}", key="heads",
                             hint="give `head_dim`, or a number of heads dividing them")
        if self.heads % self.groups:
            raise ShapeError(f"`kv_heads` {self.groups} does not divide `heads` {self.heads}: "
                             "each key and value head serves as many query heads",
                             key="kv_heads")
        if self.rotary and self.dim(x[0].shape) % 2:
            raise ShapeError(f"rotary embeddings rotate pairs of features, but `head_dim` is "
                             f"{self.dim(x[0].shape)}", key="rotary",
                             hint="an even `head_dim`")
        return (*query[:-1], self.out or features)

    @property
    def groups(self) -> int:
        """Key and value heads (G)."""
        return self.kv_heads or self.heads

    def dim(self, query: Shape) -> int:
        """Features per head (d) for queries of shape `query`."""
        return self.head_dim or query[-1] // self.heads

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        query, context = x[0], x[-1]
        (t, features), (s, context_features) = query[-2:], context[-2:]
        lead = math.prod(query[:-2])
        q, kv, out = self.heads * self.dim(query), 2 * self.groups * self.dim(query), y[-1]
        attention = lead * 2 * t * s * q
        projections = lead * (t * features * q + s * context_features * kv + t * q * out)
        return Cost(params=features * q + context_features * kv + q * out
                    + (q + kv + out if self.bias else 0),
                    macs=projections + attention, attention_macs=attention,
                    bias_adds=lead * (t * q + s * kv + t * out) if self.bias else 0,
                    scores=lead * self.heads * t * s)

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """The projections' gradients and the attention products' (module docstring)."""
        queries_grad, keys_grad = trainable or needs_input_grad[0], trainable or needs_input_grad[-1]
        if not (queries_grad or keys_grad):
            return GradCost()
        query, context = x[0], x[-1]
        (t, features), (s, context_features) = query[-2:], context[-2:]
        lead, q, kv = math.prod(query[:-2]), self.heads * self.dim(query), 2 * self.groups * self.dim(query)
        if len(x) == 1:  # one packed projection: one input gradient
            projected = t * features * (q + kv) if needs_input_grad[0] else 0
        else:
            projected = (t * features * q if needs_input_grad[0] else 0) + \
                (s * context_features * kv if needs_input_grad[1] else 0)
        cost = self.cost(x, y)
        product = cost.attention_macs // 2  # H*T*S*d, one of the forward's two
        products = 5 if self._fused(query) else 1 + queries_grad + 2 * keys_grad
        return GradCost(input_macs=lead * (t * q * y[-1] + projected) + products * product,
                        weight_macs=cost.macs - cost.attention_macs if trainable else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """The kernel's tensors (module docstring), per path."""
        query, context = x[0], x[-1]
        (t, _), (s, _) = query[-2:], context[-2:]
        lead, d, heads, groups = math.prod(query[:-2]), self.dim(query), self.heads, self.groups
        inputs = tuple(range(len(x))) if trainable else ()
        fixed = (t + s) * d if self.rotary else 0
        if not self._fused(query):  # the math path
            weights = lead * heads * t * s
            floats = lead * heads * d * (t + s) + weights * (2 if self.dropout else 1) \
                + (lead * t * heads * d if trainable else 0)
            floats += lead * self._values(x)
            return Saved(inputs=inputs, floats=floats, fixed=fixed,
                         masks=weights if self.dropout else 0)
        grouped = groups < heads
        floats = heads * t * d  # the output (its logsumexp float32 whatever the precision)
        floats += heads * t * d if self.rotary else 0  # Q rotated
        floats += 2 * heads * s * d if grouped else groups * s * d if self.rotary else 0
        floats += heads * t * d if self.rotary and trainable else 0  # the output's copy
        q, kv = heads * d, 2 * groups * d
        if len(x) == 1:
            floats += t * (q + kv) if not self.rotary or not grouped else 0
        else:
            floats += (0 if self.rotary else t * q) + (0 if grouped else s * kv)
        return Saved(inputs=inputs, floats=floats, stats=heads * t, fixed=fixed)

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """The math path's forward holds, besides what it keeps: the projections the
        module's views of them hold (not the packed one when queries are rotated and keys
        repeated; not one kept whole, with one head), the queries scaled or rotated (one
        copy held by the kernel or the module; one query scaled, not rotated, is the
        product's operand, not copied for it, as one key is), the keys rotated or repeated;
        and at its most the scores beside the weights (V's copy not made yet) or the heads'
        output. The output projection's copy is not made yet. The fused kernel keeps all
        it holds."""
        query, context = x[0], x[-1]
        keeping = any(needs_input_grad) or trainable
        if self._fused(query):  # keeping nothing, the kernel still makes what it would keep
            would = self.saved(x, y, (True,) * len(x), False)
            return 0 if keeping else would.floats + would.stats
        (t, _), (s, _) = query[-2:], context[-2:]
        d, heads, groups = self.dim(query), self.heads, self.groups
        grouped, one = groups < heads, heads == 1
        queries, keys, scores = heads * t * d, heads * s * d, heads * t * s
        if len(x) == 1:
            held = 0 if self.rotary and grouped else t * (heads + 2 * groups) * d
        else:
            held = (0 if self.rotary else queries) + (0 if grouped else 2 * s * groups * d)
        held += (groups * s * d if self.rotary and not grouped else 0) + (keys if grouped else 0)
        laid_out = self.rotary and d > 2  # rotated heads of 2 are not one step apart
        if not keeping:  # Q scaled (and rotated), V repeated; at the products, their copies
            held += queries * (2 if self.rotary else 1) + (keys if grouped else 0)
            single = not self.rotary and t == 1, not self.rotary and s == 1
            copies = (0 if laid_out or one or single[0] else queries) + \
                (0 if laid_out or grouped or one or single[1] else keys)
            return math.prod(query[:-2]) * (held + max(
                copies + keys + scores, 2 * scores, scores + (0 if grouped or one else keys)
                + queries))
        if one:  # the projection is kept whole
            held -= t * 3 * d if len(x) == 1 else 2 * s * d
        # Q scaled or rotated, beside the copy kept for the product (none of one query
        # scaled: it is the product's operand)
        held += queries * (2 if self.rotary and not laid_out
                           else 0 if t == 1 and not self.rotary else 1)
        values = keys if not (one or grouped) else 0
        most = max(scores - values, queries) - (queries if trainable else 0)
        return math.prod(query[:-2]) * (held + most)

    def _fused(self, query: Shape) -> bool:
        """Whether F.scaled_dot_product_attention takes the fused kernel in training (one
        leading dim, no dropout), not the math path. Not with rotary heads of 2 features:
        rotated pairwise, their features are not one step apart, which the kernel needs."""
        return len(query) == 2 and self.dropout == 0 and not (self.rotary and self.dim(query) == 2)

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """The fused kernel's backward, once the output projection's is done (its weight
        gradients made, the layer's output gradient and the projection's copy of a rotated
        output freed): the attention output's gradient as the kernel lays it out, and the
        gradients of Q, K and V (K's and V's per query head when repeated). The math path's
        at the softmax's backward: the attention weights' gradient and the scores', beside
        V's; by then V (or what it is a view of), the weights dropped and the output
        projection's copy of the heads' output are freed."""
        query, context = x[0], x[-1]
        (t, _), (s, _) = query[-2:], context[-2:]
        d = self.dim(query)
        projection = self.heads * d * y[-1] + (y[-1] if self.bias else 0)
        weights = projection if trainable else 0
        copied = self.heads * t * d if trainable and (self.rotary or not self._fused(query)) else 0
        if not self._fused(query):
            scores = self.heads * t * s
            freed = self._values(x) - self.heads * s * d + (scores if self.dropout else 0) + copied
            return Scratch(floats=math.prod(query[:-2]) * (2 * scores - freed),
                           weights=weights, frees_output_grad=True)
        keys = (self.heads if self.groups < self.heads else self.groups) * d
        return Scratch(floats=2 * t * self.heads * d + 2 * s * keys - copied,
                       weights=weights, frees_output_grad=True)

    def _values(self, x: Sequence[Shape]) -> int:
        """V as the math path keeps it, per leading index: a copy for the batched product
        (H*S*d; repeated for grouped-query heads), or with one head, V a view, the
        projection it is a view of."""
        (t, _), (s, _), d = x[0][-2:], x[-1][-2:], self.dim(x[0])
        if self.heads > 1:
            return self.heads * s * d
        return t * 3 * d if len(x) == 1 else s * 2 * d

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """The output projection's: a linear layer's over tokens (`Linear.returns_view`)."""
        return self.bias

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    @classmethod
    def from_torch(cls, module: Any) -> dict[str, Any]:
        """torch's nn.MultiheadAttention (`torch_imports`): its heads, attention dropout and
        bias, under torch's keys. What the op has no argument for is passed under torch's
        name, which the op refuses: sequences first (`batch_first` False), a zero key and
        value appended (`add_zero_attn`); keys and values of other sizes (`kdim`, `vdim`)
        and learned extra ones (`add_bias_kv`) hold other tensors, which the importer
        refuses."""
        args = {"heads": module.num_heads, "dropout": module.dropout,
                "bias": module.in_proj_bias is not None, "state_dict": "torch"}
        return args | ({} if module.batch_first else {"batch_first": False}) | \
            ({"add_zero_attn": True} if module.add_zero_attn else {})

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"dim": x[0][-1], "context_dim": x[1][-1] if len(x) == 2 else None,
                "heads": self.heads, "head_dim": self.dim(x[0]), "kv_heads": self.groups,
                "out": y[-1], "causal": self.causal, "dropout": self.dropout, "bias": self.bias,
                "rotary_base": self.rotary_base if self.rotary else None,
                "torch_keys": self.state_dict == "torch"}

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import Attention

        return Attention(**self.torch_args(x, y))

    def label(self) -> str:
        return self._label(f"{self.heads}x{self.head_dim}" if self.head_dim
                           else f"{self.heads} heads")

    def label_at(self, x: Sequence[Shape], y: Shape) -> str:
        """`attention 12x64, causal`: heads x head_dim, and the variants."""
        return self._label(f"{self.heads}x{self.dim(x[0])}", cross=len(x) == 2)

    def _label(self, heads: str, cross: bool = False) -> str:
        parts = [f"{'cross-' if cross else ''}attention {heads}"]
        if self.kv_heads and self.kv_heads != self.heads:
            parts.append(f"kv {self.kv_heads}")
        parts += [word for word, on in (("causal", self.causal), ("rotary", self.rotary)) if on]
        return ", ".join(parts)


class BiasedWindowAttention(Op):
    """Self-attention inside windows of N tokens with a learned bias per relative position
    and head, computed by F.scaled_dot_product_attention's math path (the windows' tensors
    are 5-d), as torchvision's Swin and MaxViT attention do: the shared counts of
    `window_attention` and `relative_attention`. A subclass says where its windows lie
    (`_grid`), and holds `heads` and `bias`."""

    family: ClassVar[str] = "attention"
    prefix: ClassVar[str] = "attn"
    cuts_windows: ClassVar[bool] = True
    """Whether the layer cuts its input into windows itself (a copy of T*C, the qkv
    projection's input), or reads them as they are."""

    if TYPE_CHECKING:  # the subclasses' fields, declared where they order them
        heads: int
        bias: bool

    def _grid(self, x: Sequence[Shape]) -> tuple[int, int, int, int]:
        """(T tokens over all windows, N per window, C features, entries of the bias table
        per head)."""
        raise NotImplementedError

    def _dropout(self) -> float:
        return 0.0

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        """qkv 3C^2 and the projection C^2 per token, scores and weighted values N * C per
        token each; the bias table, and its N x N index."""
        tokens, per_window, features, table = self._grid(x)
        attention = 2 * tokens * per_window * features
        return Cost(params=4 * features * features + (4 * features if self.bias else 0)
                    + table * self.heads,
                    buffers=per_window * per_window,
                    macs=4 * tokens * features * features + attention,
                    attention_macs=attention,
                    bias_adds=4 * tokens * features if self.bias else 0,
                    scores=tokens * per_window * self.heads)

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """The projections' gradients, and four attention products: torch's math path
        (module docstring), queries, keys and values all coming from the one input."""
        if not (trainable or needs_input_grad[0]):
            return GradCost()
        cost = self.cost(x, y)
        projections = cost.macs - cost.attention_macs  # qkv 3/4 of it, the output's 1/4
        into_input = projections if needs_input_grad[0] else projections // 4
        return GradCost(input_macs=into_input + 2 * cost.attention_macs,
                        weight_macs=projections if trainable else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """The math path's tensors over the windows (module docstring); trained, the qkv
        projection's input (the windows' copy, or the input itself) and the output
        projection's copy of the heads' output."""
        weights, tokens = self.cost(x, y).scores, self._padded(x)
        floats = (2 + self._values()) * tokens + weights * (2 if self._dropout() else 1) \
            + ((2 if self.cuts_windows else 1) * tokens if trainable else 0)
        return Saved(inputs=(0,) if trainable and not self.cuts_windows else (),
                     floats=floats, masks=weights if self._dropout() else 0)

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """The most of three moments. At the output projection's backward: the heads'
        output's gradient beside, where the layer cuts windows, the gradient of the padded
        map's windows (the output's freed by then), else the output's. At the weighted
        values' product's backward: the attention weights' gradient beside V's, the heads'
        output's and V (or with one head the projection it is a view of). At the softmax's
        backward: the attention weights' gradient and the scores', beside V's gradient; by
        then the output's gradient is freed, and so are V and the output projection's copy
        of the heads' output."""
        freed = self._values() - 1 + (1 if trainable else 0)
        features, scores, tokens = x[0][-1], self.cost(x, y).scores, self._padded(x)
        at_projection = tokens + (tokens if self.cuts_windows else math.prod(y))
        at_softmax = 2 * scores - freed * tokens
        at_product = at_softmax + (1 + self._values()) * tokens - scores
        return Scratch(floats=max(at_projection, at_softmax, at_product),
                       weights=features * features + (features if self.bias else 0)
                       if trainable else 0, frees_output_grad=True)

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """The most of three moments, beside what the layer keeps. At the scores' bias add:
        the scores and the scores biased at once, beside the projection and Q or K scaled
        (with more heads held, not kept; with one head V is a view of the projection, which
        is kept), and the windows' copy where the layer cuts them and does not keep them;
        V's copy, the weights and the output projection's copy are not made yet. At the
        weighted values' product: the product, beside the same, and the map the windows
        are a strided view of. As the output is made (`_end`). Keeping nothing, the
        windows' copy, the projection and Q scaled are held, beside the scores and,
        before, K scaled and the copies of Q and K for their product."""
        tokens, scores = self._padded(x), self.cost(x, y).scores
        windows = tokens if self.cuts_windows else 0
        # Q and K scaled are copied for their batched product, except with one head or one
        # token per window, where their product reads them as they lie
        scaled = tokens if self.heads > 1 and self._grid(x)[1] > 1 else 0
        if not (any(needs_input_grad) or trainable):
            copies = 2 * scaled  # K scaled, Q and K copied
            return windows + 4 * tokens + max(tokens + copies + scores, 2 * scores)
        # with more heads, the projection and Q or K scaled are held but not kept (with
        # one head they are kept: V is a view of the projection)
        unkept = 3 * tokens + scaled if self.heads > 1 else 0
        # ... less V's copy, not made yet when the scores are biased
        held = unkept - tokens if self.heads > 1 else 0
        at_bias = held + scores - (tokens if trainable and self.heads > 1 else 0) + \
            (0 if trainable else windows)
        # at the weighted values' product: the product beside what it keeps and what is
        # held; less the output projection's copy (not made yet), plus the windows' copy
        # when not kept or the map they are a strided view of
        at_product = tokens + unkept - (tokens if trainable else 0) + \
            (windows if self._windows(x) == "strided" or not trainable else 0)
        return max(at_bias, at_product, self._end(x, trainable))

    def _end(self, x: Sequence[Shape], trainable: bool) -> int:
        """Float32 elements per sample held beside what the layer keeps as it makes its
        output."""
        raise NotImplementedError

    def _windows(self, x: Sequence[Shape]) -> str:
        """How the windows the layer reads lie in memory: as the map does ("map"), a
        strided view of it, which the qkv projection copies while the map stays held
        ("strided"), or a copy of it, as the map the output projection's result is made
        back into ("copy")."""
        return "map"

    def _values(self) -> int:
        """V's tokens x features kept: a copy for the batched product, or with one head
        (V a view) the whole projection."""
        return 3 if self.heads == 1 else 1

    def _padded(self, x: Sequence[Shape]) -> int:
        """Elements of the windows' tokens (T x C)."""
        tokens, _, features, _ = self._grid(x)
        return tokens * features

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None


class WindowAttention(BiasedWindowAttention):
    """Swin's (shifted) window attention over a map of vectors [H, W, C]: self-attention
    inside each `window` of tokens, with a learned bias per relative position and head,
    the map rolled by `shift` first (and the windows that wrap around masked) and back
    after (netspec.backends.modules.WindowAttention, torchvision's ShiftedWindowAttention).
    """

    op: Literal["window_attention"] = "window_attention"
    torch_class: ClassVar[str] = "WindowAttention"
    torch_imports: ClassVar[tuple[str, ...]] = (
        "torchvision.models.swin_transformer.ShiftedWindowAttention",)
    torch_names: ClassVar[dict[str, str]] = {"heads": "num_heads", "window": "window_size",
                                             "shift": "shift_size", "dropout": "attention_dropout"}
    positional: ClassVar[tuple[str, ...]] = ("heads", "window", "shift")

    heads: PosInt
    window: PosInts = 7
    shift: NonNegInts = 0
    """How far the map rolls before the windows are cut (half a window in every other
    block); no roll along a dim the window already covers."""
    dropout: Probability = 0.0
    bias: bool = True

    def infer(self, x: Sequence[Tensor]) -> Shape:
        if len(x[0].shape) != 3:
            raise ShapeError(f"window_attention reads a map of vectors [H, W, C], but "
                             f"{x[0].src} gives {fmt_shape(x[0].shape)}",
                             hint="channels last: `permute: [0, 2, 3, 1]` from [C, H, W]")
        features = x[0].shape[-1]
        if features % self.heads:
            raise ShapeError(f"`heads` {self.heads} does not divide the {features} features of "
                             f"{x[0].src} (its last dim: window attention reads [H, W, C])",
                             key="heads")
        window, shift = self.sizes()
        if any(s >= w for s, w in zip(shift, window, strict=True)):
            raise ShapeError(f"`shift` {list(shift)} must be smaller than the window "
                             f"{list(window)}", key="shift")
        return x[0].shape

    @classmethod
    def from_torch(cls, module: Any) -> dict[str, Any]:
        """As the base reads them; torchvision's ShiftedWindowAttention may also drop out
        its output (`dropout`), which no argument says: then an argument of that name is
        passed, which the op refuses."""
        dropout = getattr(module, "dropout", 0.0)
        return super().from_torch(module) | ({"output_dropout": dropout} if dropout else {})

    def sizes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(window, shift), each (along H, along W)."""
        return spatial(self.window, 2, "window"), spatial(self.shift, 2, "shift")  # type: ignore[return-value]

    def _grid(self, x: Sequence[Shape]) -> tuple[int, int, int, int]:
        """The map padded to whole windows."""
        (height, width, features), (wh, ww) = x[0], self.sizes()[0]
        tokens = (-(-height // wh) * wh) * (-(-width // ww) * ww)
        return tokens, wh * ww, features, (2 * wh - 1) * (2 * ww - 1)

    def _dropout(self) -> float:
        return self.dropout

    def _windows(self, x: Sequence[Shape]) -> str:
        """Cutting the padded map [H, W] into windows of [wh, ww] transposes (wh, W/ww) and
        merges (H/wh, W/ww) and (wh, ww): the map as it lies where the windows are one row
        high or as wide as the map; a strided view where the map is one window high and
        the windows one column wide; a copy elsewhere (and so is the map made back)."""
        (wh, ww), (height, width) = self.sizes()[0], x[0][:2]
        if wh == 1 or -(-width // ww) == 1:
            return "map"
        return "strided" if -(-height // wh) == 1 and ww == 1 else "copy"

    def _end(self, x: Sequence[Shape], trainable: bool) -> int:
        """Made back into the map, where the windows were a copy, or rolled back: the output
        projection's result and the map made of it (else the output is a view of the
        result)."""
        (window, shift), tokens = self.sizes(), self._padded(x)
        rolled = any(s and w < -(-n // w) * w for s, w, n in zip(shift, window, x[0][:2],
                                                                   strict=True))
        return 2 * tokens if rolled or self._windows(x) == "copy" else 0

    def storage(self, x: Sequence[Shape], y: Shape) -> int:
        """The map padded to whole windows: the output is a crop of it."""
        return self._padded(x)

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """Its windows' tokens reshaped back into a map, and cropped where it was padded."""
        return True

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        window, shift = self.sizes()
        return {"dim": x[0][-1], "heads": self.heads, "window": window, "shift": shift,
                "dropout": self.dropout, "bias": self.bias}

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import WindowAttention as Module

        return Module(**self.torch_args(x, y))

    def label(self) -> str:
        return self._label(f"{self.heads} heads")

    def label_at(self, x: Sequence[Shape], y: Shape) -> str:
        """`window attention 3x32, 7x7, shift 3`: heads x head size, window, shift."""
        return self._label(f"{self.heads}x{x[0][-1] // self.heads}")

    def _label(self, heads: str) -> str:
        window, shift = self.sizes()
        text = f"window attention {heads}, {fmt_pair(window)}"
        return text + (f", shift {fmt_step(shift)}" if any(shift) else "")


class RelativeAttention(BiasedWindowAttention):
    """MaxViT's relative-position self-attention over partitions already cut [*G, P, D]:
    the P = s x s tokens of each partition attend to each other, their scores biased by a
    learned table per relative position and head and scaled by D^-1/2 (the features', not
    a head's), as torchvision's RelativePositionalMultiHeadAttention computes
    (netspec.backends.modules.RelativeAttention, holding its tensors under its keys)."""

    op: Literal["relative_attention"] = "relative_attention"
    torch_class: ClassVar[str] = "RelativeAttention"
    torch_imports: ClassVar[tuple[str, ...]] = (
        "torchvision.models.maxvit.RelativePositionalMultiHeadAttention",)
    torch_names: ClassVar[dict[str, str]] = {"heads": "n_heads"}
    positional: ClassVar[tuple[str, ...]] = ("heads",)
    cuts_windows: ClassVar[bool] = False

    heads: PosInt
    bias: bool = True

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        if len(shape) < 3:
            raise ShapeError(f"relative_attention reads partitions of tokens [G, P, D] (or "
                             f"[*G, P, D]), but {x[0].src} gives {fmt_shape(shape)}",
                             hint="`unflatten` the tokens into partitions, or `reshape` to "
                                  "[1, P, D] for one")
        if math.isqrt(shape[-2]) ** 2 != shape[-2]:
            raise ShapeError(f"the {shape[-2]} tokens of a partition of {x[0].src} are not "
                             f"a square s x s (its dim -2: relative_attention reads [G, P, D])",
                             hint="partitions of s x s tokens, P = s^2")
        if shape[-1] % self.heads:
            raise ShapeError(f"`heads` {self.heads} does not divide the {shape[-1]} features "
                             f"of {x[0].src}", key="heads")
        return shape

    def _grid(self, x: Sequence[Shape]) -> tuple[int, int, int, int]:
        """Partitions of P = s x s tokens: a table of (2s-1)^2 relative positions."""
        per_window, features = x[0][-2:]
        side = math.isqrt(per_window)
        return math.prod(x[0][:-1]), per_window, features, (2 * side - 1) ** 2

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """The output projection's: a linear layer's over tokens (`Linear.returns_view`)."""
        return self.bias

    def _end(self, x: Sequence[Shape], trainable: bool) -> int:
        """At the output projection: its result and, unless kept for its weights' gradient,
        the heads' output merged; with more heads the projection Q, K and V are views of
        (held by the module until it returns)."""
        tokens = self._padded(x)
        return (3 * tokens if self.heads > 1 else 0) + tokens + (0 if trainable else tokens)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"dim": x[0][-1], "heads": self.heads, "side": math.isqrt(x[0][-2]),
                "bias": self.bias}

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import RelativeAttention as Module

        return Module(**self.torch_args(x, y))

    def label(self) -> str:
        return f"relative attention {self.heads} heads"

    def label_at(self, x: Sequence[Shape], y: Shape) -> str:
        """`relative attention 2x32, 7x7`: heads x head size, partition."""
        side = math.isqrt(x[0][-2])
        return f"relative attention {self.heads}x{x[0][-1] // self.heads}, {side}x{side}"
