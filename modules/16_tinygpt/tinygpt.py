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
# # Module 16 · TinyGPT: a language model from your own framework
#
# Fifteen modules built a tensor, layers, attention, a data loader, autograd, optimizers and a
# trainer. This one builds almost nothing new: it **assembles** a GPT -- the architecture behind
# ChatGPT, at a size this laptop trains in minutes -- from those parts, and trains it on
# Shakespeare until it writes new (fake) Shakespeare, one character at a time.
#
# ```
#   "KING:" ──CharTokenizer──► [35, 33, 38, 31, 22]                  text -> ids            new
#                                   │
#            Embedding(ids) + PositionalEmbedding(ids)              lookup tables          new
#                                   │ (B, T, n_embd)
#        ┌─────────────── TransformerBlock × n_layer ────────────────┐                     new
#        │  x = x + Dropout(MultiHeadAttention(LayerNorm(x), causal)) │  Modules 07, 08, 12
#        │  x = x + MLP(LayerNorm(x))       MLP = Dense→GELU→Dense    │  Modules 04, 03, 05
#        └────────────────────────────────────────────────────────────┘
#                                   │
#            LayerNorm(x) @ Embedding.weightᵀ -> logits (B, T, vocab)  weight tying
#                                   │
#            CrossEntropyLoss(logits, the next ids)                  Module 09
#            AdamW, cosine schedule with warm-up, clip_grad_norm      Module 10
#            Trainer, DataLoader                                      Modules 11, 08
# ```
#
# A language model predicts the **next** token from the ones before it. Trained on text, it picks
# up spelling, words, metre and who speaks when -- all from "which character comes next?". Then it
# **generates**: predict, sample one character, append it, repeat.
#
# Along the way we measure what a training step costs, what temperature and top-k do to the
# samples, and how much of the model really is reused from earlier modules.

# %%
#| default_exp core.tinygpt

# %%
#| export
import gzip
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tinytorch.core.activations import GELU, Softmax
from tinytorch.core.attention import MultiHeadAttention, causal_mask
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DATA_DIR, Dataset
from tinytorch.core.layers import Dense, Module, Parameter
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Sequential, count_parameters
from tinytorch.core.normalization import LayerNorm
from tinytorch.core.regularization import Dropout
from tinytorch.core.setup import rng
from tinytorch.core.tensor import Tensor

# %%
import itertools
import math
import tempfile
import time

from tinytorch.core.dataloader import DataLoader
from tinytorch.core.optimizers import AdamW, CosineWithWarmup, clip_grad_norm
from tinytorch.core.setup import matmul_gflops, peak_memory, set_seed, time_it
from tinytorch.core.training import Accuracy, Trainer

# %% [markdown]
# ## 1. The text: Shakespeare, shipped with the package
#
# The package carries 22 plays -- the histories and the tragedies -- as one gzipped ASCII file
# (`tinytorch/data/shakespeare.txt.gz`, 1.2 MB; its README says where it comes from and how it
# was cleaned). Three million characters: enough for a small model to learn a lot, small enough to
# read into memory in a blink.
#
# We hold out the **last 10 %** for validation -- two whole plays and the end of a third, text the
# model never trains on -- so its loss there tells us how well it *generalises* rather than how
# well it memorises. The split is fixed,
# so every run, test and benchmark compares like with like.
#
# ```
#   |<──────────────────── train: 90 % ────────────────────>|<──────── val: 10 % ────────>|
#   Antony and Cleopatra, Coriolanus, ... Timon of Athens (most) | its end, Titus Andronicus,
#                                                                  Troilus and Cressida
# ```

# %%
#| export
@lru_cache(maxsize=1)
def load_shakespeare():
    """The shipped corpus as one string: 22 Shakespeare plays, 3,080,323 ASCII characters (read once)."""
    with gzip.open(DATA_DIR / "shakespeare.txt.gz", "rt", encoding="ascii", newline="") as handle:
        return handle.read()


def shakespeare_split(val_fraction=0.1):
    """The course's fixed split: (train_text, val_text), the last `val_fraction` of the corpus held out."""
    ### HINT: cut the text of load_shakespeare() at int(len(text) * (1 - val_fraction)): the head trains, the tail validates
    ### BEGIN SOLUTION
    text = load_shakespeare()
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: the corpus and the split

# %%
text = load_shakespeare()
train_text, val_text = shakespeare_split()
assert len(text) == 3_080_323 and text.startswith("ANTONY AND CLEOPATRA")
assert train_text + val_text == text and len(val_text) == len(text) - int(0.9 * len(text))
assert "Gutenberg" not in text  # the licence boilerplate was stripped when the file was built
print(f"{len(text):,} characters, {len(set(text))} distinct; train {len(train_text):,}, validation {len(val_text):,}")
print(text[text.index("To be, or not to be") :][:300])

# %% [markdown]
# ## 2. CharTokenizer: text to integers and back
#
# A network computes with numbers, so each character gets an integer **id**: its position in the
# sorted list of distinct characters. Sorting makes the ids reproducible (the same text always
# gives the same vocabulary). Real GPTs use sub-word tokens (about 50,000 of them); characters keep
# the vocabulary tiny (~80) and need no training, at the price of longer sequences.
#
# ```
#   vocabulary  ['\n', ' ', '!', ..., 'A', 'B', ..., 'a', 'b', ...]      stoi: char -> id
#   encode("KING")  ->  [35, 33, 38, 31]                                 itos: id -> char
#   decode([35, 33, 38, 31])  ->  "KING"
# ```
#
# The naive encoder is a dictionary lookup per character -- a Python step each, so the three
# million characters of the corpus take a noticeable fraction of a second. The vectorised one turns the string into its
# Unicode code points in one call (`str.encode("utf-32-le")` is 4 bytes per character, which
# `np.frombuffer` reads as integers) and looks all of them up at once in a table indexed by code
# point. Decoding runs the same way backwards: an array of one-character strings (dtype `<U1`,
# also 4 bytes each) indexed by the ids, read back as UTF-32.
#
# A character the tokenizer has never seen has no id. Silently mapping it to something would
# corrupt the data; we raise an error that names the character instead. The vocabulary is saved as
# JSON next to a trained model: the ids mean nothing without it.

# %%
def encode_naive(stoi, text):
    """One dictionary lookup per character: correct, and slow."""
    return np.array([stoi[ch] for ch in text], dtype=np.int64)


# %%
#| export
def _ids(values):
    """Token ids as an int64 ndarray, from a Tensor, an array or a (nested) list."""
    array = np.asarray(values.data if isinstance(values, Tensor) else values)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


class CharTokenizer:
    """Characters <-> integer ids: id i is the i-th character of the (sorted) vocabulary.

    CharTokenizer().fit(text) builds the vocabulary from a text; CharTokenizer(chars) takes one.
    encode(text) -> int64 ids; decode(ids) -> text; save(path) / CharTokenizer.load(path) as JSON.
    """

    def __init__(self, chars=()):
        self._build(list(chars))

    def _build(self, chars):
        if any(not isinstance(c, str) or len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("the vocabulary must be distinct single characters")
        self.chars = chars
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        codes = np.array([ord(ch) for ch in chars], dtype=np.int64)
        # code point -> id, -1 for unknown; the last entry is a -1 that every larger code point maps to
        self._table = np.full(int(codes.max(initial=-1)) + 2, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(chars))
        self._symbols = np.array(chars, dtype="<U1")  # id -> character, 4 bytes each (UTF-32)

    @property
    def vocab_size(self):
        return len(self.chars)

    def fit(self, text):
        """Make the vocabulary the sorted distinct characters of `text`; returns self."""
        self._build(sorted(set(text)))
        return self

    def encode(self, text):
        """The int64 ids of the characters of `text`; a character outside the vocabulary raises ValueError."""
        ### HINT: codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4"); ids = self._table.take(codes, mode="clip") (-1 = unknown); raise ValueError naming the unknown characters
        ### BEGIN SOLUTION
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        ids = self._table.take(codes, mode="clip")  # code points beyond the table land on its final -1
        if (ids < 0).any():
            unknown = sorted({text[i] for i in np.flatnonzero(ids < 0)})
            raise ValueError(
                f"characters not in the vocabulary of {self.vocab_size}: {''.join(unknown)!r} "
                "(fit the tokenizer on text that contains them)"
            )
        return ids
        ### END SOLUTION

    def decode(self, ids):
        """The text of a sequence of ids (a list, an array or a Tensor, any shape: read in order)."""
        ids = _ids(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
        ### HINT: index self._symbols with the ids and read the bytes back: .tobytes().decode("utf-32-le")
        ### BEGIN SOLUTION
        return self._symbols[ids].tobytes().decode("utf-32-le")
        ### END SOLUTION

    def save(self, path):
        """Write the vocabulary as JSON: {"chars": [...]}."""
        Path(path).write_text(json.dumps({"chars": self.chars}) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path):
        """The tokenizer whose vocabulary `save` wrote to `path`."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["chars"])

    def __repr__(self):
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# %% [markdown]
# ### 🧪 Check: round trips, unknown characters, and the naive encoder measured

# %%
tokenizer = CharTokenizer().fit(text)
V = tokenizer.vocab_size
assert tokenizer.chars == sorted(set(text)) and tokenizer.chars[:2] == ["\n", " "]
ids = tokenizer.encode("KING:\nNo.")
assert ids.dtype == np.int64 and tokenizer.decode(ids) == tokenizer.decode(ids.tolist()) == "KING:\nNo."
assert ids.tolist() == [tokenizer.stoi[ch] for ch in "KING:\nNo."] and ids[:5].tolist() == [35, 33, 38, 31, 22]
assert tokenizer.encode("").size == 0 and tokenizer.decode([]) == ""
try:
    tokenizer.encode("café ☺")
    raise AssertionError("an unknown character must raise")
except ValueError as error:
    assert "é" in str(error) and "☺" in str(error)
    print("unknown characters:", error)
with tempfile.TemporaryDirectory() as folder:
    tokenizer.save(Path(folder) / "vocab.json")
    reloaded = CharTokenizer.load(Path(folder) / "vocab.json")
assert reloaded.chars == tokenizer.chars and np.array_equal(reloaded.encode(text[:1000]), tokenizer.encode(text[:1000]))

passage = text[:500_000]
naive_s, naive_ids = time_it(encode_naive, tokenizer.stoi, passage, repeat=1, warmup=0)
fast_s, fast_ids = time_it(tokenizer.encode, passage, repeat=3)
assert np.array_equal(naive_ids, fast_ids)
data = tokenizer.encode(text)
decode_s, decoded = time_it(tokenizer.decode, data, repeat=3)
assert decoded == text
print(f"vocabulary: {V} characters, ln V = {math.log(V):.3f}")
print(f"encode {len(passage):,} characters: dictionary loop {naive_s * 1e3:.0f} ms, lookup table {fast_s * 1e3:.1f} ms "
      f"({naive_s / fast_s:.0f}x); decode all {len(text):,}: {decode_s * 1e3:.1f} ms")

# %% [markdown]
# ## 3. Batches: every window of the text is an example
#
# A training example is a window of `block_size` ids, and its target is the same window shifted by
# one -- so one window holds `block_size` predictions at once, each from a longer context:
#
# ```
#   text     F  i  r  s  t     C  i  t
#   x        F  i  r  s  t     C          block_size = 7
#   y           i  r  s  t     C  i       y[t] = x[t + 1]: the character after x[0..t]
#   predict  "F"->i  "Fi"->r  "Fir"->s  ...  "First C"->i
# ```
#
# Every start position gives a window, so the training text is a `Dataset` of about 2.8 million
# (overlapping) examples -- and Module 08's `DataLoader` serves shuffled batches of them unchanged.
# Only `get_batch` is worth writing ourselves: the default stacks the windows one by one, while one
# fancy-indexing operation cuts all of them at once (`starts[:, None] + arange(block_size + 1)`
# is a `(batch, block_size + 1)` matrix of positions).

# %%
#| export
class TextWindows(Dataset):
    """Every window of `block_size` ids in a token stream; example i is (ids[i:i+T], ids[i+1:i+T+1])."""

    def __init__(self, ids, block_size):
        self.ids, self.block_size = _ids(ids), int(block_size)
        if len(self.ids) <= self.block_size:
            raise ValueError(f"{len(self.ids)} ids do not fill one window of block_size + 1 = {self.block_size + 1}")

    def __len__(self):
        return len(self.ids) - self.block_size

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        return self.ids[index : index + self.block_size], self.ids[index + 1 : index + self.block_size + 1]

    def get_batch(self, indices):
        ### HINT: windows = self.ids[np.asarray(indices)[:, None] + np.arange(self.block_size + 1)]; inputs are all but the last column, targets all but the first
        ### BEGIN SOLUTION
        windows = self.ids[np.asarray(indices)[:, None] + np.arange(self.block_size + 1)]
        return windows[:, :-1], windows[:, 1:]
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: windows and targets, one by one against all at once

# %%
train_ids, val_ids = data[: len(train_text)], data[len(train_text) :]  # one id per character
windows = TextWindows(train_ids, block_size=8)
x0, y0 = windows[0]
assert tokenizer.decode(x0) == text[:8] and tokenizer.decode(y0) == text[1:9]
starts = np.array([5, 1000, 42])
loop_s, (xs_loop, ys_loop) = time_it(Dataset.get_batch, windows, starts, repeat=3)
xs, ys = windows.get_batch(starts)
assert np.array_equal(xs, xs_loop) and np.array_equal(ys, ys_loop) and np.array_equal(xs[:, 1:], ys[:, :-1])
loader = DataLoader(TextWindows(train_ids, block_size=64), batch_size=12, shuffle=True, seed=0)
xb, yb = next(iter(loader))
assert xb.shape == (12, 64) and xb.dtype == np.int64 and np.array_equal(xb.data[:, 1:], yb.data[:, :-1])
big = np.arange(512)
loop_s, _ = time_it(Dataset.get_batch, loader.dataset, big, repeat=3)
fast_s, _ = time_it(loader.dataset.get_batch, big, repeat=3)
print(f"{len(loader.dataset):,} training windows; a batch of 512 windows: one by one {loop_s * 1e3:.2f} ms, "
      f"fancy indexing {fast_s * 1e3:.2f} ms ({loop_s / fast_s:.0f}x)")

# %% [markdown]
# ## 4. Embeddings: a learned vector for every token and every position
#
# An id is a name, not a quantity: id 40 is not "twice" id 20. The network needs a vector per
# token, and we let training choose them: a table `weight` of shape `(vocab, n_embd)`, whose row
# `i` is token `i`'s vector. Mathematically the lookup is a one-hot vector times the table; in
# practice it is indexing -- no multiplication by zeros:
#
# ```
#   one_hot(2) = [0 0 1 0 ...]  @  weight (vocab, n_embd)   =  weight[2]      same numbers
#   ids (B, T)  ──weight[ids]──►  (B, T, n_embd)                              a gather
# ```
#
# `weight[ids]` is Module 02's recorded `getitem`, and Module 09 already taught it to run
# backwards: a token that appears 50 times in the batch gets the **sum** of its 50 gradients
# (`np.add.at`, which accumulates repeated indices where `grad[ids] += g` would keep only one).
#
# Attention is blind to order (it mixes a set of vectors), so GPT adds a second learned table with
# a vector per **position** `0 … block_size-1`. `PositionalEmbedding` is an `Embedding` whose ids
# are always `0 … T-1`, so it takes the first `T` rows with a slice -- whose backward is a plain
# (and cheaper) slice assignment. The `block_size` rows are also why a GPT has a maximum context.
#
# Both start as small random numbers (normal, standard deviation 0.02, as GPT-2): large enough to
# tell tokens apart, small enough not to dominate the sum.

# %%
def embedding_naive(weight, ids):
    """The definition: one-hot rows times the table (builds a (tokens, vocab) matrix of mostly zeros)."""
    one_hot = np.zeros((ids.size, weight.shape[0]), dtype=weight.dtype)
    one_hot[np.arange(ids.size), ids.reshape(-1)] = 1.0
    return (one_hot @ weight).reshape(*ids.shape, weight.shape[1])


# %%
#| export
class Embedding(Module):
    """A learned table of `num_embeddings` vectors: Embedding(ids) -> weight[ids], shape ids.shape + (dim,)."""

    def __init__(self, num_embeddings, embedding_dim, std=0.02):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(rng().normal(0.0, std, (num_embeddings, embedding_dim)).astype(np.float32))

    def forward(self, ids):
        ids = _ids(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise IndexError(f"ids must lie in [0, {self.num_embeddings}), got {ids.min()}..{ids.max()}")
        ### HINT: index the weight Parameter with the id array (a recorded getitem, so gradients flow into the rows used)
        ### BEGIN SOLUTION
        return self.weight[ids]
        ### END SOLUTION

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class PositionalEmbedding(Embedding):
    """A learned vector per position 0..block_size-1: PositionalEmbedding(ids) -> the first T rows, (T, dim)."""

    def __init__(self, block_size, embedding_dim, std=0.02):
        super().__init__(block_size, embedding_dim, std)

    def forward(self, ids):
        length = np.shape(ids)[-1]
        if length > self.num_embeddings:
            raise ValueError(f"a sequence of {length} tokens is longer than block_size={self.num_embeddings}")
        ### HINT: the first `length` rows of the weight, by a slice
        ### BEGIN SOLUTION
        return self.weight[:length]
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: lookup against one-hot, gradients accumulate, positions broadcast (measured)

# %%
set_seed(0)
emb = Embedding(V, 16)
ids = np.array([[3, 5, 3], [0, 3, 7]])
out = emb(ids)
assert out.shape == (2, 3, 16) and np.array_equal(out.data, embedding_naive(emb.weight.data, ids))
out.sum().backward()
assert emb.weight.grad.data[3].tolist() == [3.0] * 16, "id 3 appears 3 times: its row gets 3 gradients"
assert emb.weight.grad.data[5].tolist() == [1.0] * 16 and not emb.weight.grad.data[1].any()
pos = PositionalEmbedding(8, 16)
assert (emb(ids) + pos(ids)).shape == (2, 3, 16)
assert np.array_equal((emb(ids) + pos(ids)).data[1, 2], emb.weight.data[7] + pos.weight.data[2])
try:
    pos(np.zeros((1, 9), dtype=np.int64))
    raise AssertionError("a sequence longer than block_size must raise")
except ValueError as error:
    print("too long:", error)
assert 0.018 < Embedding(V, 128).weight.data.std() < 0.022

batch_ids = loader.dataset.get_batch(np.arange(12))[0]
table = Embedding(V, 128)
naive_s, naive_out = time_it(embedding_naive, table.weight.data, batch_ids)
fast_s, fast_out = time_it(lambda: table(batch_ids).data)
naive_bytes, _ = peak_memory(embedding_naive, table.weight.data, batch_ids)
fast_bytes, _ = peak_memory(lambda: table(batch_ids).data)
assert np.allclose(naive_out, fast_out, atol=1e-6)
print(f"embed a (12, 64) batch: one-hot @ table {naive_s * 1e6:.0f} µs, {naive_bytes / 1e3:.0f} kB; "
      f"lookup {fast_s * 1e6:.0f} µs, {fast_bytes / 1e3:.0f} kB")

# %% [markdown]
# ## 5. The transformer block: attention to talk, an MLP to think
#
# Each block lets every position first **gather** information from earlier positions (causal
# multi-head attention, Module 07) and then **process** it on its own (a two-layer MLP, four times
# wider inside, with GELU). Both are wrapped the same way, the *pre-LayerNorm* residual of GPT-2:
#
# ```
#   x ──┬──► LayerNorm ─► MultiHeadAttention(causal) ─► Dropout ──► (+) ──┬──► LayerNorm ─► MLP ──► (+) ──►
#       └──────────────────────────────────────────────────────────────┘  └────────────────────────┘
#   MLP = Dense(n_embd, 4·n_embd) → GELU → Dense(4·n_embd, n_embd) → Dropout
# ```
#
# - **Residuals** (`x + f(x)`): the block only has to learn a *correction* to x, and the gradient
#   reaches the first layer through the `+` unchanged however deep the stack -- why transformers
#   of 100 layers train at all.
# - **LayerNorm before** each sub-layer (Module 08) keeps its input at unit scale while the residual
#   stream itself is left free to grow; the original transformer normalised *after* the sum and
#   needed a careful warm-up to train.
# - **Causal mask**: position t may attend to positions 0…t only. Training predicts all T next
#   characters of a window in one pass, and that is only honest if no position can peek at the
#   character it must predict.
#
# Everything in the block comes from earlier modules; the block is only the wiring.

# %%
#| export
class TransformerBlock(Module):
    """A pre-LayerNorm GPT block on (B, T, n_embd): x + attention(LN(x)) with a causal mask, then x + MLP(LN(x))."""

    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head)
        self.attn_dropout = Dropout(dropout)
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = Sequential(Dense(n_embd, 4 * n_embd), GELU(), Dense(4 * n_embd, n_embd), Dropout(dropout))

    def forward(self, x):
        ### HINT: h = self.ln_1(x); x = x + self.attn_dropout(self.attn(h, h, h, causal_mask(T))) with T = x.shape[1]; then return x + self.mlp(self.ln_2(x))
        ### BEGIN SOLUTION
        h = self.ln_1(x)
        x = x + self.attn_dropout(self.attn(h, h, h, causal_mask(x.shape[1])))
        return x + self.mlp(self.ln_2(x))
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: the block against a direct NumPy computation, and causality
#
# The reference below recomputes the block from its parameters with plain NumPy (layer norm,
# per-head attention with `-inf` above the diagonal, tanh-GELU MLP). Then causality: change the
# last token of a sequence and no earlier position may change at all.

# %%
def block_reference(block, x):
    """The block's forward pass in plain NumPy, from its parameters (float64)."""
    def layer_norm(v, ln):
        mu, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + ln.eps) * ln.gamma.data + ln.beta.data

    def dense(v, layer):
        return v @ layer.weights.data + layer.bias.data

    attn, (B, T, C) = block.attn, x.shape
    heads, d = attn.num_heads, attn.head_dim
    h = layer_norm(x, block.ln_1)
    projections = (attn.q_proj, attn.k_proj, attn.v_proj)
    q, k, v = (dense(h, p).reshape(B, T, heads, d).transpose(0, 2, 1, 3) for p in projections)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + np.triu(np.full((T, T), -np.inf), k=1)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    x = x + dense((weights @ v).transpose(0, 2, 1, 3).reshape(B, T, C), attn.out_proj)
    first, _, second, _ = block.mlp.layers
    z = dense(layer_norm(x, block.ln_2), first)
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    return x + dense(gelu, second)


set_seed(1)
block = TransformerBlock(n_embd=32, n_head=4)
x_np = np.random.default_rng(0).standard_normal((2, 10, 32))
out = block(Tensor(x_np.astype(np.float32)))
assert out.shape == (2, 10, 32)
assert np.allclose(out.data, block_reference(block, x_np), atol=1e-4)
changed = x_np.copy()
changed[:, -1] += 5.0  # a different last token
out_changed = block(Tensor(changed.astype(np.float32)))
assert np.array_equal(out.data[:, :-1], out_changed.data[:, :-1]), "earlier positions must not see the future"
assert not np.allclose(out.data[:, -1], out_changed.data[:, -1])
print("block output matches NumPy; positions 0..8 identical when position 9 changes")

# %% [markdown]
# ## 6. TinyGPT: embeddings, a stack of blocks, and a tied output layer
#
# The model is the diagram at the top of this lesson. Three details:
#
# - **Configuration** in one small dataclass, `GPTConfig`, so a model can be rebuilt from its saved
#   settings. The defaults are nanoGPT's documented CPU setting for character-level Shakespeare:
#   4 layers, 4 heads, 128-wide embeddings, a context of 64 characters.
# - **Weight tying.** The output layer turns a vector back into one score per token. GPT-2 reuses
#   the token embedding table for it: `logits = h @ weightᵀ`, "how similar is h to each token's
#   vector". One table fewer to learn (here `vocab × n_embd` numbers), and the table gets gradient
#   from both ends. `weight.T` is Module 02's recorded `permute`, so the gradient from the output
#   layer flows into the same Parameter as the embedding's: autograd adds the two.
# - **forward(idx, targets=None) -> (logits, loss)**: with targets it also returns the
#   cross-entropy of predicting each next character (Module 09's `CrossEntropyLoss` accepts
#   `(B, T, vocab)` logits with `(B, T)` targets). A model that knows nothing predicts the uniform
#   distribution, whose loss is `ln(vocab)`; that is the number to beat.

# %%
#| export
@dataclass
class GPTConfig:
    """The shape of a TinyGPT. Defaults: nanoGPT's CPU setting for character-level Shakespeare."""

    vocab_size: int
    block_size: int = 64  # the longest context the model can see
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0


class TinyGPT(Module):
    """A character-level GPT: TinyGPT(config); forward(idx (B, T), targets=None) -> (logits (B, T, vocab), loss)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embedding = Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = PositionalEmbedding(config.block_size, config.n_embd)
        self.dropout = Dropout(config.dropout)
        blocks = [TransformerBlock(config.n_embd, config.n_head, config.dropout) for _ in range(config.n_layer)]
        self.blocks = Sequential(blocks)
        self.ln_f = LayerNorm(config.n_embd)
        self.loss_fn = CrossEntropyLoss()

    def forward(self, idx, targets=None):
        ids = _ids(idx)
        if ids.ndim != 2:
            raise ValueError(f"idx must be a (batch, time) array of token ids, got shape {ids.shape}")
        ### HINT: x = dropout(token_embedding(ids) + position_embedding(ids)); x = ln_f(blocks(x)); logits = x @ token_embedding.weight.T; loss = loss_fn(logits, targets) when targets is not None
        ### BEGIN SOLUTION
        x = self.dropout(self.token_embedding(ids) + self.position_embedding(ids))
        x = self.ln_f(self.blocks(x))
        logits = x @ self.token_embedding.weight.T  # weight tying: the output layer is the embedding table
        loss = None if targets is None else self.loss_fn(logits, _ids(targets))
        ### END SOLUTION
        return logits, loss

    def num_parameters(self):
        """The number of learned numbers; the tied table is counted once."""
        return count_parameters(self)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())


# %% [markdown]
# ### 🧪 Check: shapes, the tied weight, the parameter count, and the loss of a blank model
#
# The parameter count by hand, for the default configuration (d = n_embd, V = vocabulary):
# token table V·d, position table 64·d, per block 2 LayerNorms (4d), attention (4 Dense of d·d + d)
# and the MLP (d·4d + 4d + 4d·d + d), and the final LayerNorm (2d) -- no output layer, it is tied.

# %%
set_seed(0)
config = GPTConfig(vocab_size=V)
model = TinyGPT(config)
d = config.n_embd
by_hand = V * d + 64 * d + 4 * (4 * d + 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)) + 2 * d
assert model.num_parameters() == by_hand
assert sum(p is model.token_embedding.weight for p in model.parameters()) == 1
print(f"TinyGPT{tuple(asdict(config).values())}: {model.num_parameters():,} parameters "
      f"({V * d:,} in the tied token table)")

xb, yb = loader.dataset.get_batch(np.arange(0, 1200, 100))
logits, loss = model(xb, yb)
assert logits.shape == (12, 64, V) and loss.shape == ()
reference = logits.data - logits.data.max(-1, keepdims=True)
reference = -(np.take_along_axis(reference, yb[..., None], -1)[..., 0] - np.log(np.exp(reference).sum(-1))).mean()
assert np.isclose(loss.item(), reference, rtol=1e-5)
print(f"loss of the untrained model: {loss.item():.3f}   uniform guess ln V = {math.log(V):.3f}")
assert abs(loss.item() - math.log(V)) < 0.15

loss.backward()
grad_from_both_ends = model.token_embedding.weight.grad.data
assert grad_from_both_ends.shape == (V, d) and np.abs(grad_from_both_ends).sum(axis=1).min() > 0, \
    "the output layer gives every row of the tied table a gradient, even tokens absent from the batch"
model.zero_grad()

# %% [markdown]
# ## 7. Generation: predict, sample, append, repeat
#
# To write text the model runs on the context, takes the logits of the **last** position (the
# prediction for the next character), turns them into probabilities, draws one character, appends
# it and starts again. The context is cut to the last `block_size` ids: the model has no position
# vectors beyond that. Two knobs shape the distribution:
#
# - **temperature** τ: sample from `softmax(logits / τ)`. τ < 1 sharpens (more likely characters get
#   even more likely), τ > 1 flattens towards uniform; τ → 0 always picks the most likely character
#   (greedy decoding), and τ = 0 means exactly that.
# - **top-k**: keep only the k largest logits, set the rest to -∞ (probability 0), then softmax.
#   It cuts off the long tail of unlikely characters that make samples derail; top_k = 1 is greedy
#   (and top_k below 1 is a ValueError: it would keep nothing).
#
# ```
#   logits        [2.0, 1.0, 0.5, -1.0]
#   τ = 1         [0.61, 0.22, 0.14, 0.03]
#   τ = 0.5       [0.84, 0.11, 0.04, 0.00]     sharper
#   τ = 1, k = 2  [0.73, 0.27, 0,    0   ]     the tail cut off
# ```
#
# Drawing a sample: with `cdf` the running sum of the probabilities and u uniform in [0, 1), the
# token is the first index whose `cdf` exceeds u (so token i is chosen with probability p_i): the
# number of `cdf` values at or below u. Scaling u by the total, `cdf[-1]`, makes that right even when
# rounding leaves the sum a hair away from 1: u stays below the total, so the count stays below the
# vocabulary size. Both functions take any leading axes, `(..., vocab)`: one distribution, and one
# draw, per row, e.g. per sequence and position of a batch. We draw u from a generator: the same `seed` gives the same text, which is what makes a sample
# reproducible. Generation only predicts, so it runs in evaluation mode (dropout off) under
# `no_grad()`: no graph is recorded and no memory is spent on one.

# %%
#| export
def next_token_probs(logits, temperature=1.0, top_k=None):
    """The distribution of the next token, (..., vocab): softmax(logits / temperature) over the top_k largest logits.

    temperature 0 puts all the mass on the largest logit (greedy decoding).
    """
    logits = np.array(logits.data if isinstance(logits, Tensor) else logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    ### HINT: if top_k: kth = np.sort(logits, -1)[..., -min(top_k, vocab), None] and logits below it become -inf; temperature 0: a one-hot at the argmax; else Softmax(dim=-1) of logits / temperature
    ### BEGIN SOLUTION
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        kth = np.sort(logits, axis=-1)[..., -min(top_k, logits.shape[-1]), None]
        logits[logits < kth] = -np.inf
    if temperature == 0:
        best = logits.argmax(axis=-1)[..., None]
        return (np.arange(logits.shape[-1]) == best).astype(np.float64)
    return Softmax(dim=-1)(Tensor(logits / temperature)).data
    ### END SOLUTION


def sample_next_token(probs, generator=None):
    """One index per row of `probs` (..., vocab), index i drawn with probability probs[..., i]."""
    generator = generator if generator is not None else rng()
    ### HINT: cdf = np.cumsum(probs, -1); u = generator.random(...) * cdf[..., -1:], one u per row; the answer is how many cdf values are <= u
    ### BEGIN SOLUTION
    cdf = np.cumsum(probs, axis=-1)
    u = generator.random(cdf.shape[:-1] + (1,)) * cdf[..., -1:]  # scaled by the total: rounding-safe
    return (cdf <= u).sum(axis=-1)
    ### END SOLUTION


def next_logits(model, ids, cache=None):
    """The logits (B, vocab) of the token after `ids` (B, T), seen through the last block_size ids.

    Without a cache the model reads the whole window again. With a KVCache (section 8) it reads only
    the ids the cache has not seen yet; once the window slides, every position moves and the cache
    starts again from the full window.
    """
    window = ids[:, -model.config.block_size :]
    if cache is None:
        return model(window)[0].data[:, -1]
    if ids.shape[1] > model.config.block_size:
        cache.clear()  # positions are counted from the window's start: all of them just shifted by one
    return model.forward_cached(window[:, cache.length :], cache)


def generate(self, prompt, max_new_tokens, temperature=1.0, top_k=None, seed=None, use_cache=False):
    """Continue `prompt` (token ids, (T,) or (B, T)) by `max_new_tokens` sampled tokens; return all the ids.

    temperature 0 (or top_k=1) decodes greedily. seed: None draws from tinytorch's generator
    (set_seed), an int uses a private one, so the same seed always gives the same text.
    use_cache=True keeps every block's keys and values between steps (section 8): the same
    tokens, each new one computed from itself alone instead of the whole context.
    """
    ids = _ids(prompt).copy()
    single = ids.ndim == 1
    ids = ids.reshape(1, -1) if single else ids
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"the prompt must hold at least one token id, got shape {np.shape(prompt)}")
    generator = np.random.default_rng(seed) if seed is not None else rng()
    cache = KVCache.for_model(self, batch=ids.shape[0]) if use_cache else None
    was_training = self.training
    self.eval()
    try:
        with no_grad():
            ### HINT: repeat max_new_tokens times: next_logits(self, ids, cache), next_token_probs, sample_next_token, append as a new column
            ### BEGIN SOLUTION
            for _ in range(max_new_tokens):
                probs = next_token_probs(next_logits(self, ids, cache), temperature, top_k)
                ids = np.concatenate([ids, sample_next_token(probs, generator)[:, None]], axis=1)
            ### END SOLUTION
    finally:
        self.train(was_training)
    return ids[0] if single else ids


TinyGPT.generate = generate

# %% [markdown]
# ### 🧪 Check: the distributions by hand, sampling frequencies, and reproducible generation

# %%
toy = np.array([2.0, 1.0, 0.5, -1.0])
assert np.allclose(next_token_probs(toy), np.exp(toy) / np.exp(toy).sum())
assert np.allclose(next_token_probs(toy, top_k=2), [np.e / (np.e + 1), 1 / (np.e + 1), 0, 0])
assert next_token_probs(toy, temperature=0).tolist() == [1, 0, 0, 0]
assert next_token_probs(toy, temperature=1e-3)[0] == 1.0  # τ -> 0 tends to greedy
draws = sample_next_token(np.tile(next_token_probs(toy), (20_000, 1)), np.random.default_rng(0))
assert np.allclose(np.bincount(draws, minlength=4) / 20_000, next_token_probs(toy), atol=0.01)

def entropy(p):
    """Entropy in nats of each distribution (0 log 0 = 0)."""
    return -(p * np.log(np.where(p > 0, p, 1))).sum(-1)

prompt = tokenizer.encode("KING RICHARD III.\n")
with no_grad():
    last_logits = model(prompt[None])[0].data[0, -1]
temperatures = (0.25, 0.5, 1.0, 2.0, 4.0)
entropies = [entropy(next_token_probs(last_logits, t)) for t in temperatures]
print("temperature:  ", "  ".join(f"{t:>5}" for t in temperatures))
print("entropy (nats):", "  ".join(f"{h:5.2f}" for h in entropies))
assert all(a < b for a, b in zip(entropies, entropies[1:])) and entropies[-1] <= math.log(V)

first = model.generate(prompt, 20, seed=7)
assert np.array_equal(first, model.generate(prompt, 20, seed=7)) and np.array_equal(first[: len(prompt)], prompt)
greedy = model.generate(prompt, 20, temperature=0)
assert np.array_equal(model.generate(prompt, 20, top_k=1, seed=3), greedy)
assert model.training, "generate restores training mode"
print("untrained model, seed 7:", repr(tokenizer.decode(first[len(prompt):])))

# %% [markdown]
# ## 8. A KV cache: generation without recomputing the past
#
# **The idea.** Look at what `generate` computes for its 100th token: the whole context of 99
# tokens goes through every block again, although the first 98 of them went through the very same
# blocks one step earlier, with the same result. Causality (section 5) is what makes that result
# the same: position t only sees positions 0…t, so appending a token changes nothing at the earlier
# positions. What a later position needs from an earlier one is only what attention reads from it,
# its **key** and its **value**, in every block. Keep those, and each step only has to push the
# *one new token* through the model:
#
# ```
#   naive, step t:   ids[0..t] ──► every block, every position ──► logits of position t     O(t) rows
#   cached, step t:  ids[t]    ──► every block, one position  ──► logits of position t      1 row
#                                     │ q_t attends to  [k_0 … k_{t-1} | k_t]   (cache + new)
#                                     │                 [v_0 … v_{t-1} | v_t]
#                                     └ k_t, v_t written into the cache for the next step
# ```
#
# Per block and per step, the cache turns the projections and the MLP from t rows into one, and
# attention from a (t × t) score matrix into one row of t scores. Over a generation of n tokens the
# naive loop does O(n²) row computations (O(n³) in attention), the cached one O(n) (O(n²)).
#
# **What it costs.** Memory: one key and one value vector per position, per block:
# `2 · n_layer · batch · block_size · n_embd` numbers -- for the default model 2·4·1·64·128 float32 =
# 256 kB, tiny next to the weights. We **preallocate** it for block_size positions and fill it in
# place: appending with `np.concatenate` would copy the whole past at every step, O(n²) bytes moved.
#
# **Where it stops.** The learned position vectors number the positions from the start of the
# window. As long as the context fits in block_size, the window starts at token 0 and every cached
# key keeps its position. Once the context is longer, the window slides by one token per step:
# every token's position changes, so every key and value of the first block changes, and nothing
# cached is valid. `next_logits` (section 7) then clears the cache and reads the whole window,
# exactly as the naive loop does. (Models with relative positions -- RoPE, ALiBi -- or a rolling
# "attention sink" cache get around this; they compute a different function, so their tokens
# differ from the naive loop's.) The cache is therefore exact: the **same tokens** for the same
# seed, and the speed-up is only up to block_size tokens.
#
# The code reuses the block's own layers; only the attention call changes: the queries are those of
# the new positions, the keys and values are the cache's plus the new ones. A new position i (after
# `length` cached ones) may attend to positions 0 … length + i: the causal mask shifted by `length`.

# %%
#| export
class KVCache:
    """The keys and values each block computed so far, kept between generation steps.

    Two preallocated arrays of shape (n_layer, batch, n_head, capacity, head_dim); the first
    `length` positions are filled. KVCache.for_model(model, batch) sizes them for a TinyGPT.
    """

    def __init__(self, n_layer, batch, n_head, capacity, head_dim, dtype=np.float32):
        shape = (n_layer, batch, n_head, capacity, head_dim)
        self.keys, self.values = np.zeros(shape, dtype=dtype), np.zeros(shape, dtype=dtype)
        self.length = 0

    @classmethod
    def for_model(cls, model, batch):
        config = model.config
        dtype = model.token_embedding.weight.data.dtype
        return cls(config.n_layer, batch, config.n_head, config.block_size, config.n_embd // config.n_head, dtype)

    @property
    def capacity(self):
        return self.keys.shape[3]

    @property
    def nbytes(self):
        return self.keys.nbytes + self.values.nbytes

    def clear(self):
        self.length = 0

    def extend(self, layer, k, v):
        """Write block `layer`'s keys and values of the new positions, k and v (B, heads, t, head_dim),
        after the `length` cached ones; return that block's keys and values of all length + t positions."""
        ### HINT: end = self.length + t; assign k, v into self.keys[layer, :, :, self.length:end] (and values); return the [:end] slices
        ### BEGIN SOLUTION
        end = self.length + k.shape[2]
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]
        ### END SOLUTION


def cached_attention(attn, h, cache, layer):
    """MultiHeadAttention `attn` for the new positions h (B, t, d_model), attending over the cached positions too."""
    t = h.shape[1]
    ### HINT: q from attn.q_proj(h) split into heads; k, v = cache.extend(layer, split k_proj(h).data, split v_proj(h).data); mask np.tril(ones (t, length + t), k=length); attn.attention(q, Tensor(k), Tensor(v), mask); merge heads, out_proj
    ### BEGIN SOLUTION
    q = attn._split_heads(attn.q_proj(h))
    k, v = cache.extend(layer, attn._split_heads(attn.k_proj(h)).data, attn._split_heads(attn.v_proj(h)).data)
    mask = Tensor(np.tril(np.ones((t, cache.length + t), dtype=bool), k=cache.length))
    out = attn.attention(q, Tensor(k), Tensor(v), mask)
    return attn.out_proj(out.permute(0, 2, 1, 3).reshape(h.shape[0], t, attn.d_model))
    ### END SOLUTION


def forward_cached(self, ids, cache):
    """The logits (B, vocab) of the last of `ids` (B, t), the t tokens that follow the cache's `length`
    positions; their keys and values are added to the cache. Inference only (no_grad)."""
    start, t = cache.length, ids.shape[1]
    if start + t > cache.capacity:
        raise ValueError(f"{start} cached + {t} new positions exceed block_size={cache.capacity}")
    ### HINT: x = dropout(token_embedding(ids) + position_embedding.weight[start:start + t]); each block: x += attn_dropout(cached_attention(...ln_1(x)...)), x += mlp(ln_2(x)); cache.length += t; logits of ln_f(x[:, -1])
    ### BEGIN SOLUTION
    x = self.dropout(self.token_embedding(ids) + self.position_embedding.weight[start : start + t])
    for layer, block in enumerate(self.blocks.layers):
        x = x + block.attn_dropout(cached_attention(block.attn, block.ln_1(x), cache, layer))
        x = x + block.mlp(block.ln_2(x))
    cache.length += t
    return (self.ln_f(x[:, -1]) @ self.token_embedding.weight.T).data
    ### END SOLUTION


TinyGPT.forward_cached = forward_cached

# %% [markdown]
# ### 🧪 Check: the same logits and the same tokens, then the speed-up and the memory (measured)
#
# First the logits: the prompt through the cache (one "prefill" step), then token by token, against
# the model run on the whole context each time. Then whole generations: sampled and greedy, with
# and without the cache, must give identical ids -- also past block_size, where the cache restarts.
# Finally the measurement on a model of the default size whose context holds a 64-token prompt
# and 32 new tokens (block_size 96), so that the cache is used all the way.

# %%
ids = tokenizer.encode("KING RICHARD III.\nNow is the winter")[None]
cache = KVCache.for_model(model, batch=1)
with no_grad():
    cached_logits = [model.forward_cached(ids[:, :10], cache)]
    cached_logits += [model.forward_cached(ids[:, t : t + 1], cache) for t in range(10, ids.shape[1])]
    full_logits = [model(ids[:, : t + 1])[0].data[:, -1] for t in range(9, ids.shape[1])]
assert cache.length == ids.shape[1]
assert max(np.abs(c - f).max() for c, f in zip(cached_logits, full_logits)) < 1e-4

long_prompt = tokenizer.encode(load_shakespeare()[:50])
for settings in (dict(seed=7), dict(top_k=5, temperature=0.5, seed=1)):
    assert np.array_equal(model.generate(prompt, 16, use_cache=True, **settings), model.generate(prompt, 16, **settings))
    past_block = model.generate(long_prompt, 20, use_cache=True, **settings)  # 50 + 20 > block_size 64
    assert np.array_equal(past_block, model.generate(long_prompt, 20, **settings))

set_seed(0)
roomy = TinyGPT(GPTConfig(vocab_size=V, block_size=96))
prompt64 = tokenizer.encode(load_shakespeare()[1000:1064])
naive_s, naive_ids = time_it(roomy.generate, prompt64, 32, seed=3, repeat=1, warmup=0)
cached_s, cached_ids = time_it(roomy.generate, prompt64, 32, seed=3, use_cache=True, repeat=1, warmup=0)
assert np.array_equal(naive_ids, cached_ids)
naive_bytes, _ = peak_memory(roomy.generate, prompt64, 4, seed=3)
cached_bytes, _ = peak_memory(roomy.generate, prompt64, 4, seed=3, use_cache=True)
cache_bytes = KVCache.for_model(roomy, batch=1).nbytes
print(f"32 new tokens after a 64-token prompt: recomputing {32 / naive_s:6.0f} tokens/s, "
      f"KV cache {32 / cached_s:6.0f} tokens/s: {naive_s / cached_s:.1f}x faster, the same tokens")
print(f"peak memory of 4 steps: recomputing {naive_bytes / 1e6:.2f} MB, with the cache {cached_bytes / 1e6:.2f} MB "
      f"(of which the cache {cache_bytes / 1e6:.2f} MB for {roomy.config.block_size} positions)")
assert naive_s / cached_s > 1.5  # about 3x here, more for longer contexts; the margin absorbs a busy machine

# %% [markdown]
# The cache wins more the longer the context: the naive loop's cost per token grows with the
# context, the cached one's barely does (one row per block; attention reads t keys). `make bench`
# measures the full case -- 256 new tokens after a 64-token prompt, the default model with a context
# of 320 -- next to PyTorch's uncached generation of the same model (see bench/bench_tinygpt.py).
# Memory barely moves: the cache adds its preallocated keys and values (0.4 MB here), and
# each step's activations shrink from (T × 512) per MLP to one row -- without a graph recorded
# (`no_grad`), those activations are freed as soon as the next layer has read them, so they never
# added up to much. The cache's memory grows with batch × block_size × n_layer × n_embd: for a
# large model and a long context it, not the weights, is what limits how many requests a server
# can batch.

# %% [markdown]
# ## 9. Training: the Trainer, AdamW and the cosine schedule, unchanged
#
# Nothing about training a language model is new either. `Trainer` (Module 11) runs the loop:
# zero the gradients, forward, loss, backward, `AdamW` step (Module 10), scheduler step. It
# calls `model(x)` and then `loss_fn(predictions, y)`; our model returns `(logits, loss)`, so the
# loss function we hand it takes the logits out of that pair. Its `Accuracy` metric works as it is:
# the fraction of positions whose most likely next character is the right one.
#
# A small model and a short run keep this lesson quick (one block, 64 wide, context 32). The
# full-size run -- nanoGPT's setting, 2,000 iterations -- is `python -m bench.train_tinygpt`: about
# ten minutes on a 2-core machine, ending near a validation loss of 1.83. It writes its own
# six-line step instead of using `Trainer`, for two things a GPT run wants that `Trainer` does not
# do: `clip_grad_norm` between `backward()` and `step()`, and an evaluation (and a resumable
# checkpoint) every 250 iterations rather than per epoch -- an "epoch" here would be 230,000 steps.
#
# The validation batches are fixed in advance, so two evaluations differ only because the model
# changed. The number to beat is `ln V`, the loss of a uniform guess; a model that learned only how
# frequent each character is would get the entropy of the character distribution, computed below.

# %%
def next_token_loss(output, targets):
    """Trainer's loss_fn for TinyGPT: cross-entropy of the logits in the model's (logits, loss) output."""
    return CrossEntropyLoss()(output[0], targets)


class NextTokenAccuracy(Accuracy):
    """Accuracy of the most likely next token, read from the model's (logits, loss) output."""

    def __call__(self, output, targets):
        return super().__call__(output[0], targets)


counts = np.bincount(train_ids, minlength=V) / len(train_ids)
unigram = entropy(counts)
set_seed(0)
small = TinyGPT(GPTConfig(vocab_size=V, block_size=32, n_layer=1, n_head=4, n_embd=64))
optimizer = AdamW(small.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.0)
steps = 300
schedule = CosineWithWarmup(optimizer, warmup_steps=20, total_steps=steps, min_lr=1e-3)
trainer = Trainer(small, optimizer, next_token_loss, metrics=[NextTokenAccuracy()], scheduler=schedule)
train_loader = DataLoader(TextWindows(train_ids, 32), batch_size=32, shuffle=True, seed=0)
train_batches = list(itertools.islice(train_loader, steps))  # one "epoch" of `steps` batches
val_batches = list(itertools.islice(DataLoader(TextWindows(val_ids, 32), batch_size=64, shuffle=True, seed=1), 8))
before = trainer.evaluate(val_batches)
start = time.perf_counter()
trainer.fit(train_batches, epochs=1, progress=False)
train_s = time.perf_counter() - start
after = trainer.evaluate(val_batches)
print(f"uniform guess ln V = {math.log(V):.3f}; character frequencies alone: {unigram:.3f}")
print(f"validation loss {before['loss']:.3f} -> {after['loss']:.3f} after {steps} steps in {train_s:.1f} s "
      f"(next-character accuracy {before['accuracy']:.1%} -> {after['accuracy']:.1%})")
assert after["loss"] < unigram < math.log(V), "the model must learn more than character frequencies"
assert after["loss"] < 0.65 * math.log(V)

# %% [markdown]
# The model beats character frequencies: it has learned which characters follow which. A sample
# shows what that means (greedy decoding repeats itself -- the most likely continuation of a
# common word is another common word -- so we sample, at a moderate temperature):

# %%
sample = small.generate(tokenizer.encode("KING HENRY.\n"), 200, temperature=0.8, seed=1)
print(tokenizer.decode(sample))
assert tokenizer.decode(sample).startswith("KING HENRY.\n") and len(sample) == 12 + 200
with no_grad():
    trained_logits = small(tokenizer.encode("KING HENRY.\n")[None])[0].data[0, -1]
print("entropy of the next-character distribution after 'KING HENRY.\\n' at temperature 0.5, 1, 2:",
      [round(float(entropy(next_token_probs(trained_logits, t))), 2) for t in (0.5, 1.0, 2.0)])

# %% [markdown]
# ## 10. What a training step costs (measured)
#
# The full-size model (section 6: 4 blocks, 128 wide) on one batch of 12 windows of 64 characters.
# A rule of thumb counts the arithmetic: each parameter takes part in one multiply-add per token
# in the forward pass (2 floating-point operations) and two in the backward pass (4 more), so a step
# costs about `6 · parameters · tokens` operations, plus the attention products, which grow with
# the square of the context: `4 · n_layer · T · n_embd` per token in the forward pass, again ×3.
# Dividing by the measured time gives the rate the framework sustains, to compare with what the
# machine's matrix product reaches.
#
# Memory: the recorded graph keeps every intermediate result until `backward()` has used it --
# activations of all layers, and the `(B, heads, T, T)` attention weights of every block. Under
# `no_grad()` nothing is kept, which is why generation is cheap. AdamW keeps two numbers per
# parameter (`m` and `v`).

# %%
model = TinyGPT(config)
optimizer = AdamW(model.parameters(), lr=1e-3)
xb, yb = loader.dataset.get_batch(np.random.default_rng(0).integers(0, len(loader.dataset), 12))


def forward_backward():
    optimizer.zero_grad()
    model(xb, yb)[1].backward()


def step():
    forward_backward()
    clip_grad_norm(model.parameters(), 1.0)
    optimizer.step()


forward_s, _ = time_it(lambda: model(xb, yb), repeat=3)
backward_s = time_it(forward_backward, repeat=3)[0] - forward_s
step_s, _ = time_it(step, repeat=3)
with no_grad():
    inference_s, _ = time_it(lambda: model(xb), repeat=3)
    inference_bytes, _ = peak_memory(lambda: model(xb))
graph_bytes, _ = peak_memory(lambda: model(xb, yb))
tokens, n = xb.size, model.num_parameters()
flops = 6 * n * tokens + 3 * 4 * config.n_layer * config.block_size * config.n_embd * tokens
print(f"forward (recording)  {forward_s * 1e3:7.1f} ms   peak memory {graph_bytes / 1e6:6.1f} MB")
print(f"forward (no_grad)    {inference_s * 1e3:7.1f} ms   peak memory {inference_bytes / 1e6:6.1f} MB")
print(f"backward             {backward_s * 1e3:7.1f} ms")
update_s = step_s - forward_s - backward_s
print(f"clip + AdamW         {update_s * 1e3:7.1f} ms   optimizer state {optimizer.memory_bytes() / 1e6:.1f} MB")
print(f"whole step           {step_s * 1e3:7.1f} ms = {flops / 1e9:.2f} GFLOP at {flops / step_s / 1e9:.1f} GFLOP/s "
      f"(this machine's float32 matmul: {matmul_gflops():.0f} GFLOP/s)")
assert graph_bytes > 2 * inference_bytes, "the recorded graph keeps the activations its rules read alive"
assert optimizer.memory_bytes() == 2 * 4 * n

# %% [markdown]
# The backward pass costs about twice the forward (two matrix products for each forward one), and
# the graph needs two to three times the memory of inference: it keeps, for every layer, the
# activations the backward rules will read (Module 02 section 6 says which; `make bench` weighs a
# training step against PyTorch's). The achieved rate is well below the
# machine's matrix-product rate: part of the step is not matrix products (GELU, softmax, layer norm
# are elementwise passes over memory, each a separate NumPy call), and every recorded operation
# costs Python time. That gap is what fused kernels, the subject of Module 13, close.
#
# ## 11. How much is reused? (measured)
#
# "Reuse is the lesson" -- so let us count instead of claiming. Which parts did this module
# write, and which come from Modules 02-12? Five ways to count, each measured on the model of
# section 6 or on one of its training steps:
#
# - **layers**: every module in the model's tree (an instance of `Dense` counted each time);
# - **layer classes**: distinct classes in that tree;
# - **learned numbers**: parameters, by the class of the layer that owns them;
# - **functions executed in a training step**: every Python function of `tinytorch` that runs
#   during forward, backward, clipping and the AdamW update (traced with `sys.setprofile`),
#   counted once each, and counted per call;
# - **backward rules**: the operation types recorded in the step's graph, by the module that
#   taught them to run backwards.
#
# The measuring tools (a tracer, a walk over the layer tree) are not part of the lesson, so they live
# in `bench/reuse_tinygpt.py`, which counts as "new" whatever `tinytorch/core/tinygpt.py` defines;
# run `python -m bench.reuse_tinygpt` on your own package. On the model of section 6 it prints:
#
# ```
#                                        reused    new   reused share
# layers in the model                        64      7    90.1%
# layer classes                               9      4    69.2%
# learned numbers                       793,344 16,512    98.0%
# functions run by a training step           88      5    94.6%
# function calls in a training step       7,911     10    99.9%
# backward rules used                        13      0   100.0%
# new layer classes: ['Embedding', 'PositionalEmbedding', 'TinyGPT', 'TransformerBlock']
# new functions in the step: ['tinygpt.Embedding.forward', 'tinygpt.PositionalEmbedding.forward',
#   'tinygpt.TinyGPT.forward', 'tinygpt.TransformerBlock.forward', 'tinygpt._ids']
# ```
#
# Read the table with care, because "reused" depends on what you count. By **what runs** -- the
# learned numbers, the function calls of a training step, the backward rules -- TinyGPT is well
# over 95 % earlier modules: the only new code on the path of a training step is four short
# `forward` methods (embedding lookup, position slice, block wiring, model wiring) and the id
# check `_ids`. By **distinct classes** it is much less: four new layer classes against nine reused
# ones, because a model is a small number of new *arrangements* of many reused parts. Those four
# -- `Embedding`, `PositionalEmbedding`, `TransformerBlock` and `TinyGPT` -- plus `CharTokenizer`,
# `TextWindows` and the sampling functions are what this module added; every operation, every
# gradient, the optimizer, the schedule, the loss, the data loader and the trainer were already
# there.
#
# ## What you built
#
# A character-level GPT from your own framework: `CharTokenizer` (vectorised encode/decode, saved
# vocabulary, clear errors), `TextWindows` for the `DataLoader`, `Embedding` and
# `PositionalEmbedding`, the pre-LayerNorm `TransformerBlock`, `TinyGPT` with weight tying, and
# `generate` with temperature and top-k, and a `KVCache` that makes generation several times faster
# without changing a single token -- trained by the same `Trainer` and `AdamW` that train a
# CNN on digits. The full run, `python -m bench.train_tinygpt --iters 2000`, trains nanoGPT's CPU
# configuration on the 2.8 million training characters with a cosine schedule, gradient clipping,
# periodic validation and resumable checkpoints; `python -m bench tinygpt` times its training step
# against the same model in PyTorch, and its generation with and without the cache.
#
# Run `tito module complete 16_tinygpt` to unlock checkpoint 15, the capstone: *I can build
# unified frameworks supporting vision and language.*
