# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 07 · Attention: every position looks at every other
#
# A convolution looks at a fixed neighbourhood. In language the relevant word can be anywhere:
# in "the animal didn't cross the street because **it** was too tired", *it* needs *animal*, nine
# words back. Attention lets each position decide, from the data itself, **where to look**:
#
# ```
#   each position asks a question (query q), offers a label (key k) and a content (value v)
#
#   scores = q · kᵀ / √d         how well each query matches each key      (Lq, Lk)
#   weights = softmax(scores)    each row: a probability over the keys      rows sum to 1
#   output = weights @ v         each query gets a weighted mix of values   (Lq, dv)
#
#            keys →   the  animal  didn't ...  it
#   query "it"       [0.05  0.62   0.03  ...  0.10]   → mostly the value of "animal"
# ```
#
# The pieces, all exported to `tinytorch.core.attention`:
#
# - `ScaledDotProductAttention()(q, k, v, mask=None)` → the output, or `(output, weights)` when
#   called with `need_weights=True` (PyTorch's `F.scaled_dot_product_attention` returns the output
#   alone too, and also takes the mask as `attn_mask=` and `is_causal=True`);
# - masks: which keys a query may see (padding, or the future in a language model), `causal_mask(n)`;
# - `MultiHeadAttention(d_model, num_heads)`: several attentions side by side, each on its own
#   learned projection of the input, for self-attention (q, k, v from one sequence) and
#   cross-attention (queries from one sequence, keys and values from another).
#
# Only recorded operations are used (`@`, `*`, `+`, `reshape`, `permute` and Module 03's `Softmax`),
# so Module 09 will train all of it without changes.

# %%
#| default_exp core.attention

# %%
#| export
import math

import numpy as np

from tinytorch.core.activations import Softmax
from tinytorch.core.layers import Dense, Module, check_shape, either_name
from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.setup import peak_memory, rng, set_seed, time_it
from tinytorch.plot import FIGURES, heatmap, save_heatmap_png, show

# %% [markdown]
# ## 1. The naive version: one query at a time
#
# The definition, for one sequence: for each query, score every key, turn the scores into
# probabilities, mix the values.

# %%
def attention_naive(q, k, v):
    """q (Lq, d), k (Lk, d), v (Lk, dv) -> (Lq, dv), looping over queries and keys."""
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    for i in range(q.shape[0]):
        scores = np.array([q[i] @ k[j] for j in range(k.shape[0])]) / math.sqrt(q.shape[1])
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        for j in range(k.shape[0]):
            out[i] += weights[j] * v[j]
    return out


# %% [markdown]
# ### Why divide by √d?
#
# If the components of q and k have variance 1, their dot product sums d such products: variance
# d. For d = 64 the scores spread over ±20 or so; softmax of such scores is nearly one-hot (one
# weight ≈ 1, the rest ≈ 0), and its gradient nearly vanishes. Dividing by √d brings the variance
# back to 1. Measured:

# %%
set_seed(0)
for d in (4, 64, 512):
    q_, k_ = rng().standard_normal((2, 1000, d))
    raw = (q_ * k_).sum(axis=-1)
    print(f"d = {d:3}: std of q·k = {raw.std():6.2f}, after dividing by √d: {(raw / math.sqrt(d)).std():.2f}")

# %% [markdown]
# ## 2. Vectorised: all queries, all batches, one matrix product
#
# Stack the queries as rows of Q (Lq, d) and the keys as rows of K (Lk, d): all the scores are one
# product `Q @ Kᵀ` (Lq, Lk). Extra leading axes -- batch, heads -- ride along, since `@` on
# (..., Lq, d) and (..., d, Lk) multiplies the last two axes for every leading index.
#
# **Masks.** A mask says which keys each query may attend to. Two conventions, both accepted:
#
# - boolean, `True` = may attend (the convention of `causal_mask`);
# - additive floats, added to the scores: 0 keeps a key, a large negative number removes it.
#
# A boolean mask is turned into the additive form. We use a large *finite* negative number
# (-10⁹, or half the dtype's most negative value if that is smaller in magnitude) rather than
# -∞: after softmax's max-shift, exp(-10⁹) is exactly 0, so a masked key gets exactly zero weight;
# but a row whose keys are *all* masked stays finite (uniform weights) instead of 0/0 = NaN, which
# would poison every later computation.
#
# The mask broadcasts against the scores (..., Lq, Lk): one (Lq, Lk) mask for everything, or
# (batch, 1, Lk) for a per-sequence padding mask.

# %%
#| export
def _masked_value(dtype):
    """A large negative score that exp() turns into exactly 0, finite in `dtype`."""
    return max(-1e9, float(np.finfo(dtype).min) / 2)


def _additive_mask(mask, dtype):
    """The mask as something to add to the scores: booleans become 0 (keep) / a large negative (drop)."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype == np.bool_:
        return Tensor(np.where(array, 0.0, _masked_value(dtype)).astype(dtype))
    return mask if isinstance(mask, Tensor) else Tensor(array.astype(dtype))


def causal_mask(n):
    """(n, n) boolean mask, True on and below the diagonal: position i may attend to positions 0..i."""
    ### HINT: Position i may attend to positions 0..i: an (n, n) boolean matrix that is True on and below the
    ### HINT: diagonal, as a Tensor.
    ### BEGIN SOLUTION
    return Tensor(np.tril(np.ones((n, n), dtype=bool)))
    ### END SOLUTION


class ScaledDotProductAttention(Module):
    """softmax(q @ kᵀ / √d + mask) @ v over the last two axes; returns the output, or
    (output, weights) with need_weights=True.

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv). mask: boolean (True = may attend) or additive
    floats, broadcastable to (..., Lq, Lk); PyTorch's `attn_mask=` and `is_causal=True` work too.
    """

    def __init__(self):
        super().__init__()
        self.softmax = Softmax(dim=-1)

    def forward(self, q, k, v, mask=None, need_weights=False, *, attn_mask=None, is_causal=False):
        mask = _pytorch_mask(q, k, mask, attn_mask, is_causal)
        _check_qkv(self, q, k, v)
        weights = self._weights(q, k, mask)
        return (weights @ v, weights) if need_weights else weights @ v

    def _weights(self, q, k, mask):
        """The attention weights softmax(q @ kᵀ / √d + mask), (..., Lq, Lk)."""
        ### HINT: Scores are the dot products of queries and keys, divided by the square root of the key size; masked
        ### HINT: positions get a large negative score (the helper _additive_mask); the softmax turns each row into
        ### HINT: the weights. Return the weights (forward multiplies them with the values).
        ### BEGIN SOLUTION
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
        if mask is not None:
            scores = scores + _additive_mask(mask, scores.dtype)
        return self.softmax(scores)
        ### END SOLUTION


def _pytorch_mask(q, k, mask, attn_mask, is_causal):
    """One mask from the course's `mask=` or PyTorch's `attn_mask=` / `is_causal=True` (one of them)."""
    if sum([mask is not None, attn_mask is not None, bool(is_causal)]) > 1:
        raise TypeError("give one of mask, attn_mask and is_causal")
    if is_causal:
        if q.shape[-2] != k.shape[-2]:
            raise ValueError(f"is_causal needs as many queries as keys, got {q.shape[-2]} and {k.shape[-2]}")
        return causal_mask(q.shape[-2])
    return attn_mask if attn_mask is not None else mask


def _check_qkv(layer, q, k, v):
    """q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv): refuse shapes that do not fit, naming them."""
    if min(q.ndim, k.ndim, v.ndim) < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{type(layer).__name__} expects q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )


# %% [markdown]
# ### 🧪 Check: the vectorised attention is the naive one, and masks behave

# %%
set_seed(4)
q_np, k_np, v_np = (rng().standard_normal((5, 8)) for _ in range(3))
attention = ScaledDotProductAttention()
out, weights = attention(Tensor(q_np), Tensor(k_np), Tensor(v_np), need_weights=True)
assert np.allclose(out.data, attention_naive(q_np, k_np, v_np))
assert np.array_equal(attention(Tensor(q_np), Tensor(k_np), Tensor(v_np)).data, out.data)  # the output alone
assert np.allclose(weights.data.sum(axis=-1), 1.0)

assert causal_mask(3).data.tolist() == [[True, False, False], [True, True, False], [True, True, True]]
out, weights = attention(Tensor(q_np), Tensor(k_np), Tensor(v_np), mask=causal_mask(5), need_weights=True)
assert np.array_equal(attention(Tensor(q_np), Tensor(k_np), Tensor(v_np), is_causal=True).data, out.data)
assert np.all(weights.data[np.triu_indices(5, 1)] == 0.0)  # exactly zero above the diagonal
assert weights.data[0, 0] == 1.0 and np.allclose(out.data[0], v_np[0])  # the first query sees only itself
additive = np.where(causal_mask(5).data, 0.0, -1e9)
assert np.array_equal(attention(Tensor(q_np), Tensor(k_np), Tensor(v_np), attn_mask=additive, need_weights=True)[1].data,
                      weights.data)  # fmt: skip
nothing = np.zeros((5, 5), dtype=bool)
q32, k32, v32 = (Tensor(a.astype(np.float32)) for a in (q_np, k_np, v_np))
_, uniform = attention(q32, k32, v32, mask=nothing, need_weights=True)
assert np.all(np.isfinite(uniform.data)) and np.allclose(uniform.data, 0.2)  # fully masked rows: finite
try:
    attention(Tensor(q_np), Tensor(k_np[:, :4]), Tensor(v_np))
    raise AssertionError("queries and keys of different widths must be refused")
except ValueError as error:
    assert "got q (5, 8), k (5, 4), v (5, 8)" in str(error)
print("causal attention weights:\n", weights.data.round(2))

# %% [markdown]
# The same weights as a picture: one row per query, one column per key, darker = more attention.
# The causal mask leaves the upper triangle blank; the first query can look only at itself.
# (`tinytorch.plot` draws it in the terminal, and as a PNG in `build/figures/` when matplotlib is
# installed.)

# %%
show(heatmap(weights.data, title="causal attention: query (rows) → key (columns)"))
save_heatmap_png(weights.data, FIGURES / "07_attention_weights.png", title="causal attention weights")

# %% [markdown]
# ### Measured: loops against matrix products, and the quadratic memory
#
# Time on a batch of 8 sequences of 128 positions with d = 64.

# %%
qkv = rng().standard_normal((3, 8, 128, 64)).astype(np.float32)
loop_s, loop_out = time_it(lambda: np.stack([attention_naive(*qkv[:, b]) for b in range(8)]), repeat=1)
fast_s, fast_out = time_it(lambda: attention(*(Tensor(a) for a in qkv)).data)
assert np.allclose(loop_out, fast_out, atol=1e-4)
print(f"loops {loop_s * 1e3:.0f} ms, vectorised {fast_s * 1e3:.2f} ms: {loop_s / fast_s:.0f}x faster")

# %% [markdown]
# The weights form an (Lq, Lk) matrix per sequence and head: memory grows with the **square** of
# the sequence length. Doubling the context quadruples it -- the reason long-context transformers
# need tricks such as FlashAttention, which never stores the whole matrix.

# %%
previous = None
for length in (128, 256, 512, 1024):
    x = Tensor(rng().standard_normal((1, length, 64)).astype(np.float32))
    memory, _ = peak_memory(attention, x, x, x)
    growth = "" if previous is None else f"  ({memory / previous:.1f}x the previous)"
    print(f"sequence length {length:5}: peak {memory / 1e6:7.2f} MB{growth}")
    previous = memory
assert memory > 2 * 1024 * 1024 * 4  # at least the (L, L) scores and the (L, L) weights, float32

# %% [markdown]
# ## 3. Multi-head attention
#
# One attention computes one kind of relation. Multi-head attention runs `num_heads` of them in
# parallel, each on its own learned projection to `head_dim = d_model / num_heads` dimensions, so
# that one head can track syntax while another tracks coreference. The heads split d_model rather
# than multiply it, so the matrix products cost what one full-width attention would; only the
# (L × L) score matrices and their softmax are repeated per head.
#
# ```
#   query (B, Lq, d)  key (B, Lk, d)  value (B, Lk, d)
#       │ q_proj         │ k_proj         │ v_proj        Dense(d, d) each
#       ▼ split heads: (B, L, d) → reshape (B, L, H, d/H) → permute (B, H, L, d/H)
#   ScaledDotProductAttention on (B, H, Lq, d/H) × (B, H, Lk, d/H)  →  (B, H, Lq, d/H)
#       ▼ merge heads: permute (B, Lq, H, d/H) → reshape (B, Lq, d)
#     out_proj                                           Dense(d, d)
# ```
#
# Splitting heads is a reshape and a permute -- no arithmetic, and views until the merge, where
# `reshape` of the permuted array makes one copy. A mask of shape (B, Lq, Lk) gets a head axis
# (B, 1, Lq, Lk) so that it applies to every head; (Lq, Lk) and 4-D masks broadcast as they are.
# The weights of the last call are kept in `.attention_weights` (B, H, Lq, Lk) for inspection.
#
# **Coming from PyTorch**: `MultiHeadAttention(embed_dim=16, num_heads=4)` takes PyTorch's keyword
# too, but it is not `nn.MultiheadAttention`: inputs are always batch first `(B, L, d)` (PyTorch's
# default is `(L, B, d)` unless `batch_first=True`), and the call returns the output alone, not
# `(output, weights)` -- the weights are in `.attention_weights`. An input that is not
# `(batch, seq, d_model)` raises a `ValueError` naming both shapes.

# %%
#| export
class MultiHeadAttention(Module):
    """Attention with `num_heads` heads over (batch, seq, d_model) inputs; returns (batch, Lq, d_model).

    Called as (query, key, value, mask=None): self-attention when all three are the same sequence,
    cross-attention when key/value come from another (their length may differ from the query's).
    """

    def __init__(self, d_model=None, num_heads=None, bias=True, *, embed_dim=None):
        super().__init__()
        d_model = either_name(d_model, "d_model", embed_dim, "embed_dim")
        if num_heads is None:
            raise TypeError("MultiHeadAttention needs num_heads")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_proj = Dense(d_model, d_model, bias=bias)
        self.k_proj = Dense(d_model, d_model, bias=bias)
        self.v_proj = Dense(d_model, d_model, bias=bias)
        self.out_proj = Dense(d_model, d_model, bias=bias)
        self.attention = ScaledDotProductAttention()
        self.attention_weights = None

    def _split_heads(self, x):
        """(B, L, d_model) -> (B, heads, L, head_dim)."""
        ### HINT: Cut the last axis (d_model) into num_heads pieces of head_dim, and move the head axis in front of
        ### HINT: the sequence axis: (B, L, d_model) -> (B, heads, L, head_dim).
        ### BEGIN SOLUTION
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
        ### END SOLUTION

    def forward(self, query, key, value, mask=None):
        for x in (query, key, value):
            check_shape(self, x, f"(batch, seq, {self.d_model})", x.ndim == 3 and x.shape[-1] == self.d_model)
        ### HINT: Project query, key and value and split each into heads; a 3-D mask (B, Lq, Lk) gets a head axis so
        ### HINT: one mask serves every head; attend; keep the attention weights (detached) in self.attention_weights;
        ### HINT: merge the heads back to (B, L, d_model) and apply the output projection.
        ### BEGIN SOLUTION
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        if mask is not None and mask.ndim == 3:
            mask = mask[:, None]  # (B, Lq, Lk) -> (B, 1, Lq, Lk): the same mask for every head
        out, weights = self.attention(q, k, v, mask, need_weights=True)
        self.attention_weights = weights.detach()  # for inspection; detached so it does not keep the graph alive
        batch, _, length, _ = out.shape
        return self.out_proj(out.permute(0, 2, 1, 3).reshape(batch, length, self.d_model))
        ### END SOLUTION

    def extra_repr(self):
        return f"d_model={self.d_model}, num_heads={self.num_heads}"


# %% [markdown]
# ### 🧪 Check: multi-head attention against a direct NumPy computation
#
# The reference below does the same thing with explicit per-head slices of the projected arrays:
# head h uses columns h·head_dim ... (h+1)·head_dim of each projection.

# %%
def project(x, layer):
    return x @ layer.weights.data + layer.bias.data


def multi_head_numpy(mha, query, key, value):
    q, k, v = project(query, mha.q_proj), project(key, mha.k_proj), project(value, mha.v_proj)
    heads = []
    for h in range(mha.num_heads):
        cols = slice(h * mha.head_dim, (h + 1) * mha.head_dim)
        heads.append(np.stack([attention_naive(qb[:, cols], kb[:, cols], vb[:, cols]) for qb, kb, vb in zip(q, k, v)]))
    return project(np.concatenate(heads, axis=-1), mha.out_proj)


set_seed(2)
mha = MultiHeadAttention(16, 4)
sequence = rng().standard_normal((2, 6, 16))
memory_bank = rng().standard_normal((2, 9, 16))  # cross-attention: 9 keys for 6 queries
own = mha(Tensor(sequence), Tensor(sequence), Tensor(sequence))
assert np.allclose(own.data, multi_head_numpy(mha, sequence, sequence, sequence))
cross = mha(Tensor(sequence), Tensor(memory_bank), Tensor(memory_bank))
assert cross.shape == (2, 6, 16) and mha.attention_weights.shape == (2, 4, 6, 9)
assert np.allclose(cross.data, multi_head_numpy(mha, sequence, memory_bank, memory_bank))
assert sum(p.size for p in mha.parameters()) == 4 * (16 * 16 + 16)

# causal self-attention: changing the last token must not change any earlier output
x1 = rng().standard_normal((1, 6, 16))
x2 = x1.copy()
x2[0, -1] += 10.0
y1, y2 = (mha(Tensor(x), Tensor(x), Tensor(x), mask=causal_mask(6)).data for x in (x1, x2))
assert np.allclose(y1[0, :-1], y2[0, :-1]) and not np.allclose(y1[0, -1], y2[0, -1])

# a per-sequence padding mask (B, 1, Lk): sequence 0 has 9 real keys, sequence 1 only 5
padding = np.ones((2, 1, 9), dtype=bool)
padding[1, :, 5:] = False
mha(Tensor(sequence), Tensor(memory_bank), Tensor(memory_bank), mask=padding)
assert np.all(mha.attention_weights.data[1, :, :, 5:] == 0) and np.all(mha.attention_weights.data[0] > 0)
print(mha)

# %% [markdown]
# ### Measured: where the time goes in one multi-head attention call
#
# The benchmark shape: 8 sequences of 64 tokens, d_model = 128, 4 heads.

# %%
set_seed(3)
mha = MultiHeadAttention(128, 4)
x = Tensor(rng().standard_normal((8, 64, 128)).astype(np.float32))
total_s, _ = time_it(mha, x, x, x, repeat=20)
proj_s, q = time_it(lambda: mha._split_heads(mha.q_proj(x)), repeat=20)
attn_s, _ = time_it(mha.attention, q, q, q, repeat=20)
print(f"whole call {total_s * 1e3:.2f} ms: one projection + head split {proj_s * 1e3:.2f} ms (x4 with out_proj), "
      f"attention core {attn_s * 1e3:.2f} ms")  # fmt: skip
flops = 4 * 2 * 8 * 64 * 128 * 128 + 2 * 2 * 8 * 64 * 64 * 128
print(f"{flops / 1e6:.0f} MFLOP in total: {flops / total_s / 1e9:.1f} GFLOP/s")

# %% [markdown]
# The four projections are large 2-D matrix products (BLAS at full speed); the attention core is
# many small batched products (one per sequence and head) plus softmax, which moves the (64×64)
# weight matrices through memory several times.
#
# ## What you built
#
# `ScaledDotProductAttention` with boolean and additive masks that stay finite, `causal_mask`, and
# `MultiHeadAttention` for self- and cross-attention, all checked against direct loops. Run
# `tito module complete 07_attention` to unlock checkpoint 06 and finish the Neural Architecture
# stage. The Training stage comes next: data loading, then **autograd**, which makes everything
# built so far learn.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint causal_mask --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `causal_mask` 2: np.tril keeps the lower triangle of a matrix of ones (dtype bool).
# - `ScaledDotProductAttention._weights` 2: q @ k.transpose(-2, -1) scaled by 1 / sqrt(q.shape[-1]), plus _additive_mask(mask, dtype) when a mask is given; return self.softmax(scores).
# - `MultiHeadAttention._split_heads` 2: reshape(B, L, num_heads, head_dim), then permute(0, 2, 1, 3).
# - `MultiHeadAttention.forward` 2: mask[:, None] adds the head axis; out.permute(0, 2, 1, 3).reshape(B, L, d_model) merges the heads; self.out_proj(...) last.
