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
# # Module 08 · DataLoader: real data, in batches, kept stable
#
# Training never looks at the whole data set at once, nor at one example at a time. It takes a
# **mini-batch** -- say 128 examples -- computes the loss and its gradient on them, takes a step,
# and moves on. One pass over every example is an **epoch**; each epoch visits the examples in a
# new random order so that the batches differ from epoch to epoch.
#
# ```
#   Dataset                  DataLoader(batch_size=4, shuffle=True)          model
#   ┌───┬───┬───┬───┬───┐    epoch 1: [3 0 8 5] [1 9 2 7] [6 4]   ──►  (X, y) batches
#   │ 0 │ 1 │ 2 │ … │ 9 │    epoch 2: [7 2 0 4] [9 6 1 3] [5 8]        of Tensors
#   └───┴───┴───┴───┴───┘    every index exactly once per epoch
#    len(), dataset[i]
# ```
#
# This module builds that pipeline -- `Dataset`, `TensorDataset`, `DataLoader`, transforms for
# images -- loads the **real data that ships with the course** (1,797 handwritten digits) and reads
# the CIFAR-10 files. Then it adds the layers that keep activations in a healthy range while a
# network trains: `BatchNorm1D`, `BatchNorm2D` and `LayerNorm`.

# %%
#| default_exp core.dataloader

# %%
#| export
import gzip
import pickle
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from tinytorch.core.setup import rng
from tinytorch.core.tensor import Tensor

# %%
import tempfile

from tinytorch.core.setup import held_memory, peak_memory, set_seed, time_it

# %% [markdown]
# ## 1. Dataset: anything with a length and an index
#
# A data set is two questions: *how many examples?* (`len(dataset)`) and *what is example i?*
# (`dataset[i]`, a tuple such as `(image, label)`). That is the whole protocol -- PyTorch's too --
# so the loader below works for data in memory, in files, or computed on the fly.
#
# `TensorDataset(X, y)` is the common case: arrays in memory whose first axis indexes examples.

# %%
#| export
class Dataset:
    """The data-set protocol: `len(dataset)` examples, `dataset[i]` is a tuple of arrays.

    `get_batch(indices)` returns the examples at `indices` stacked into one array per field; this
    default asks for each example in turn and stacks them. Subclasses that hold arrays override it
    with one vectorised indexing operation.
    """

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def get_batch(self, indices):
        ### HINT: collect self[i] for every i, then np.stack the k-th field of every sample, for each k
        ### BEGIN SOLUTION
        samples = [self[int(i)] for i in indices]
        return tuple(np.stack([np.asarray(sample[k]) for sample in samples]) for k in range(len(samples[0])))
        ### END SOLUTION


class TensorDataset(Dataset):
    """Arrays (or Tensors) of equal length; example i is `(arrays[0][i], arrays[1][i], ...)`."""

    def __init__(self, *arrays):
        self.arrays = tuple(a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        if not self.arrays:
            raise ValueError("TensorDataset needs at least one array")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"all arrays must have the same first dimension, got {[len(a) for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices):
        ### HINT: index every array with the whole integer array `indices` at once (fancy indexing copies)
        ### BEGIN SOLUTION
        return tuple(a[indices] for a in self.arrays)
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: datasets

# %%
X_toy = np.arange(20, dtype=np.float32).reshape(10, 2)
y_toy = np.arange(10) % 3
toy = TensorDataset(X_toy, y_toy)
assert len(toy) == 10
x5, y5 = toy[5]
assert x5.tolist() == [10.0, 11.0] and y5 == 2
xb, yb = toy.get_batch(np.array([4, 0]))
assert xb.tolist() == [[8.0, 9.0], [0.0, 1.0]] and yb.tolist() == [1, 0]
assert [a.tolist() for a in Dataset.get_batch(toy, np.array([4, 0]))] == [xb.tolist(), yb.tolist()]

# %% [markdown]
# ## 2. DataLoader: shuffle, cut into batches, hand out Tensors
#
# Each epoch the loader draws a permutation of `0 … N-1` (or keeps the order when
# `shuffle=False`), cuts it into slices of `batch_size` indices and fetches each slice from the
# data set. The last batch may be short: `drop_last=True` throws it away (useful when a layer such
# as BatchNorm needs full batches, or to keep every step the same size).
#
# ```
#   N = 10, batch_size = 4
#   permutation  [3 0 8 5 | 1 9 2 7 | 6 4]      len(loader) = ceil(10 / 4) = 3
#   drop_last    [3 0 8 5 | 1 9 2 7]            len(loader) = 10 // 4      = 2
# ```
#
# **Reproducibility.** With `seed=None` the permutations come from the framework generator
# `tinytorch.core.setup.rng()`, so `set_seed(s)` fixes them along with everything else. With
# `seed=s` the loader owns its own generator `np.random.default_rng(s)`: epoch k always uses that
# generator's k-th permutation, whatever else draws random numbers -- two loaders built with the
# same seed hand out identical batches, epoch after epoch.
#
# For convenience `DataLoader(X, y, batch_size=...)` wraps arrays in a `TensorDataset`, and
# `transform` (section 4) is applied to the inputs of every batch.

# %%
#| export
class DataLoader:
    """Iterate over a data set in mini-batches of Tensors.

    DataLoader(dataset, y=None, batch_size=32, shuffle=False, drop_last=False, seed=None, transform=None)
      dataset    a Dataset, or an array X (then `y`, if given, holds the labels)
      shuffle    a new random order every epoch
      drop_last  skip the final batch when it is smaller than batch_size
      seed       None: draw orders from tinytorch.core.setup.rng(); an int: a private generator
      transform  applied to the first field (the inputs) of every batch, e.g. Compose([...])
    Iterating yields a tuple of Tensors per batch, e.g. (X_batch, y_batch).
    """

    def __init__(self, dataset, y=None, batch_size=32, shuffle=False, drop_last=False, seed=None, transform=None):
        if isinstance(y, (int, np.integer)):
            raise TypeError("the second argument of DataLoader is the labels y: pass batch_size=... by name")
        if not isinstance(dataset, Dataset):
            dataset = TensorDataset(dataset) if y is None else TensorDataset(dataset, y)
        elif y is not None:
            raise ValueError("pass labels `y` only together with an array X, not with a Dataset")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.transform = shuffle, drop_last, transform
        self.generator = np.random.default_rng(seed) if seed is not None else None

    def __len__(self):
        """The number of batches in one epoch."""
        ### HINT: floor division when drop_last, ceiling division otherwise
        ### BEGIN SOLUTION
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        ### END SOLUTION

    def order(self):
        """The indices of one epoch, in the order they will be served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return (self.generator or rng()).permutation(n)

    def __iter__(self):
        ### HINT: take self.order(), slice it every batch_size (len(self) batches, so drop_last is respected), get_batch
        ### HINT: each slice, apply the transform to field 0 while it is still a NumPy array, then yield every field
        ### HINT: wrapped in a Tensor
        ### BEGIN SOLUTION
        indices = self.order()
        for b in range(len(self)):
            fields = self.dataset.get_batch(indices[b * self.batch_size : (b + 1) * self.batch_size])
            if self.transform is not None:
                fields = (self.transform(fields[0]), *fields[1:])
            yield tuple(Tensor(field) for field in fields)
        ### END SOLUTION

    def __repr__(self):
        return (f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")  # fmt: skip


# %% [markdown]
# ### 🧪 Check: every example exactly once, reproducible orders, drop_last

# %%
loader = DataLoader(X_toy, y_toy, batch_size=4, shuffle=True, seed=7)
assert len(loader) == 3
epoch1 = [(xb.shape, yb.data.tolist()) for xb, yb in loader]
assert [shape for shape, _ in epoch1] == [(4, 2), (4, 2), (2, 2)]
seen = sorted(i for _, labels in epoch1 for i in labels)
assert sorted(np.concatenate([b.data[:, 0] for b, _ in loader]) // 2) == list(range(10))  # each once
assert seen == sorted(y_toy.tolist())
twin = DataLoader(X_toy, y_toy, batch_size=4, shuffle=True, seed=7)
assert [y.data.tolist() for _, y in twin] == [labels for _, labels in epoch1]  # same seed, same batches
assert [y.data.tolist() for _, y in twin] != [labels for _, labels in epoch1]  # epoch 2 is a new order
dropped = DataLoader(X_toy, y_toy, batch_size=4, drop_last=True)
assert len(dropped) == 2 and [x.shape[0] for x, _ in dropped] == [4, 4]
assert next(iter(DataLoader(X_toy, y_toy, batch_size=3)))[0].data.tolist() == X_toy[:3].tolist()
print(loader, "->", [labels for _, labels in epoch1])

# %% [markdown]
# ## 3. Real data that ships with the course: handwritten digits
#
# `tinytorch/data/digits.csv.gz` holds 1,797 handwritten digits, 8×8 pixels each, from the UCI
# *Optical Recognition of Handwritten Digits* data set (E. Alpaydin and C. Kaynak, 1998, CC BY 4.0;
# the copy scikit-learn bundles -- see `tinytorch/data/README.md`). Each row is 64 pixel values
# 0..16 (how many of the 16 pixels of a 4×4 block were inked) then the label 0..9. We scale pixels
# to [0, 1] in float32. `load_digits(images=True)` gives them the (N, 1, 8, 8) shape convolutions
# want.
#
# **The fixed split.** Every accuracy the course reports on digits is measured with
# `digits_split(test_fraction=0.2, seed=0)`: a *stratified* split -- within each class, a
# permutation from `np.random.default_rng(seed)` puts `round(0.2 × class count)` examples in the
# test set -- so both halves keep the class balance. That is 1,438 training and 359 test images.
# Never tune on the test set; carve a validation set out of the training half instead.

# %%
#| export
DATA_DIR = files("tinytorch") / "data"  # the package's data folder, wherever it is installed


@lru_cache(maxsize=1)
def _digits_table():
    """The 1797 x 65 integer table of the shipped digits file (read once, then cached)."""
    with gzip.open(DATA_DIR / "digits.csv.gz", "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    table.setflags(write=False)  # shared by every caller: nobody may change it
    return table


def load_digits(images=False):
    """The 1,797 shipped 8x8 digits: X float32 in [0, 1] of shape (1797, 64), or (1797, 1, 8, 8)
    with images=True; y int64 labels 0..9."""
    ### HINT: columns 0..63 of _digits_table() are pixels 0..16 (divide by 16, float32), column 64 the label
    ### BEGIN SOLUTION
    table = _digits_table()
    X = (table[:, :64] / 16.0).astype(np.float32)
    y = table[:, 64].copy()
    ### END SOLUTION
    return (X.reshape(-1, 1, 8, 8) if images else X), y


def digits_split(test_fraction=0.2, seed=0, images=False):
    """The course's fixed train/test split of the digits: (X_train, y_train, X_test, y_test).

    Stratified: within each class a permutation from np.random.default_rng(seed) sends
    round(test_fraction * class size) examples to the test set. Both halves keep the original
    order of the file. With the defaults: 1438 training and 359 test examples.
    """
    X, y = load_digits(images=images)
    generator = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    ### HINT: for each class c, permute np.flatnonzero(y == c) and mark the first round(test_fraction * count) as test
    ### BEGIN SOLUTION
    for label in np.unique(y):
        members = generator.permutation(np.flatnonzero(y == label))
        test[members[: round(test_fraction * len(members))]] = True
    ### END SOLUTION
    return X[~test], y[~test], X[test], y[test]


# %% [markdown]
# ### 🧪 Check: the digits, and what one looks like

# %%
X_digits, y_digits = load_digits()
assert X_digits.shape == (1797, 64) and X_digits.dtype == np.float32 and y_digits.dtype == np.int64
assert X_digits.min() == 0.0 and X_digits.max() == 1.0
assert np.bincount(y_digits).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
assert load_digits(images=True)[0].shape == (1797, 1, 8, 8)
X_train, y_train, X_test, y_test = digits_split()
assert (len(y_train), len(y_test)) == (1438, 359)
assert np.bincount(y_test).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
assert np.array_equal(digits_split()[3], y_test)  # fixed: the same split every time
shades = " .:-=+*#%@"
print(f"digit {y_digits[0]}:")
for row in X_digits[0].reshape(8, 8):
    print("   " + "".join(shades[int(v * 9)] * 2 for v in row))

# %% [markdown]
# ### Naive against vectorised batching, measured
#
# The default `Dataset.get_batch` asks for each example in turn and stacks them: one Python call per
# example. `TensorDataset.get_batch` indexes each array once with the whole index array -- NumPy
# copies the rows in C. Same batches, very different cost:

# %%
digits = TensorDataset(X_digits, y_digits)


def one_epoch(get_batch):
    order = np.random.default_rng(0).permutation(len(digits))
    return [get_batch(order[i : i + 64]) for i in range(0, len(digits), 64)]


naive_s, naive_batches = time_it(one_epoch, lambda idx: Dataset.get_batch(digits, idx), repeat=3)
fast_s, fast_batches = time_it(one_epoch, digits.get_batch, repeat=3)
assert all(np.array_equal(a[0], b[0]) for a, b in zip(naive_batches, fast_batches))
print(f"one epoch of digits in batches of 64: per-example {naive_s * 1e3:.1f} ms, vectorised {fast_s * 1e3:.2f} ms "
      f"({naive_s / fast_s:.0f}x)")  # fmt: skip
batch_bytes, _ = peak_memory(lambda: digits.get_batch(np.arange(128)))
print(f"a batch of 128 digits costs {batch_bytes:,} bytes: 128 x 64 float32 pixels = {128 * 64 * 4:,} bytes + labels")

# %% [markdown]
# ## 4. Transforms: normalise, and augment images
#
# A **transform** changes each batch on its way to the model. Ours work on a whole batch at once
# (first axis = examples), vectorised, and draw their randomness from `rng()` with a separate draw
# for every example. A transform receives the batch's inputs as a **NumPy array** and returns one:
# the `DataLoader` applies it before wrapping each field in a `Tensor`.
#
# - `Normalize(mean, std)`: `(x - mean) / std`, per channel (axis 1) when mean/std are sequences.
#   Inputs centred on zero with unit spread make the first layer's job easier.
# - `RandomCrop(size, padding)`: pad the image with zeros, cut a `size × size` window at a random
#   position -- the network learns that a digit shifted by a pixel is the same digit.
# - `RandomHorizontalFlip(p=0.5)`: mirror left-right (for photos, not for digits: a mirrored 3 is
#   not a 3!).
# - `Compose([...])`: apply several in order.
#
# ```
#   RandomCrop(8, padding=1): pad the 8x8 image with zeros to 10x10, then cut an 8x8 window
#   whose top-left corner (top, left) is drawn from {0, 1, 2} x {0, 1, 2}: in general from
#   0 .. padded size - size, both ends included, one (top, left) per image. The batch keeps its
#   axis order, (N, C, size, size).
#
#   padded 10x10            window at (1, 1): the original image
#   0 0 0 0 0 0 0 0 0 0     window at (0, 2): rows shift down by one, columns left by one
#   0 ┌─────────────┐ 0
#   0 │ digit, 8x8  │ 0
#   0 └─────────────┘ 0
#   0 0 0 0 0 0 0 0 0 0
# ```
#
# Augmentation is used **only on the training loader**; the test loader gets `Normalize` alone.

# %%
#| export
class Normalize:
    """(x - mean) / std; sequences of mean/std act per channel (axis 1 of a (N, C, ...) batch)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __call__(self, x):
        shape = (-1,) + (1,) * (x.ndim - 2) if self.mean.ndim else ()
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)


class RandomCrop:
    """Zero-pad H and W of a (N, C, H, W) batch by `padding`, then cut a random size x size window
    from each image (its own random offset per image)."""

    def __init__(self, size, padding=0):
        self.size, self.padding = int(size), int(padding)

    def __call__(self, x):
        p, s = self.padding, self.size
        ### HINT: zero-pad H and W by p; draw all the tops, then all the lefts, each with one rng().integers call
        ### HINT: (0 to padded size - s, both included, one per image); cut each image's window, keeping (N, C, s, s)
        ### BEGIN SOLUTION
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, height, width = padded.shape
        top = rng().integers(0, height - s + 1, size=n)
        left = rng().integers(0, width - s + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (s, s), axis=(2, 3))
        return windows[np.arange(n), :, top, left]  # (N, C, s, s): one window per image
        ### END SOLUTION


class RandomHorizontalFlip:
    """Mirror each image of a batch left-right with probability p."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x):
        ### HINT: a boolean mask from rng().random(len(x)) < p; copy x and reverse the last axis of the chosen images
        ### BEGIN SOLUTION
        flip = rng().random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out
        ### END SOLUTION


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x


# %% [markdown]
# ### 🧪 Check: transforms

# %%
set_seed(0)
images = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
normalized = Normalize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])(images)
assert np.allclose(normalized[:, 1], (images[:, 1] - 2.0) / 2.0)
assert np.allclose(Normalize(0.5, 0.25)(X_toy), (X_toy - 0.5) / 0.25)
crops = RandomCrop(4, padding=1)(images)
assert crops.shape == images.shape
for crop, image in zip(crops, images):  # each crop is a window of that image's padded copy
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)))
    assert any(np.array_equal(crop, padded[:, i : i + 4, j : j + 4]) for i in range(3) for j in range(3))
flipped = RandomHorizontalFlip(p=1.0)(images)
assert np.array_equal(flipped, images[..., ::-1]) and np.array_equal(RandomHorizontalFlip(p=0.0)(images), images)
augment = Compose([RandomCrop(8, padding=1), Normalize(0.5, 0.5)])
xb, yb = next(iter(DataLoader(TensorDataset(*load_digits(images=True)), batch_size=16, transform=augment)))
assert xb.shape == (16, 1, 8, 8) and xb.dtype == np.float32 and yb.dtype == np.int64
assert xb.data.min() >= -1.0 and xb.data.max() <= 1.0
augment_s, _ = time_it(augment, load_digits(images=True)[0][:128])
print(f"crop + normalise a batch of 128 digits: {augment_s * 1e6:.0f} µs")

# %% [markdown]
# ## 5. CIFAR-10: reading the real file format
#
# CIFAR-10 (60,000 colour photos of 32×32 pixels, 10 classes, 163 MB) is too big to ship, so the
# loader reads it from a folder you download once. The official "python version" is a folder
# `cifar-10-batches-py/` of Python pickles:
#
# ```
#   data_batch_1 … data_batch_5   training, 10,000 images each     dict with
#   test_batch                    10,000 test images                 b"data":   uint8 (10000, 3072)
#   batches.meta                  b"label_names": [b"airplane", …]   b"labels": list of 10000 ints
# ```
#
# Each row of `b"data"` is 1,024 red, then 1,024 green, then 1,024 blue values, each 32×32 image
# row by row -- so `reshape(N, 3, 32, 32)` is exactly NCHW. We keep the images as uint8 (150 MB for
# the training set, instead of 600 MB as float32) and convert each batch to float32 in [0, 1] when it
# is fetched. (Unpickling runs code from the file: only read files you trust, like these.)

# %%
#| export
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _unpickle(path):
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


class CIFAR10Dataset(Dataset):
    """CIFAR-10 from a local `cifar-10-batches-py` folder (or the folder that contains it).

    Examples are (image float32 (3, 32, 32) in [0, 1], label int64); `.classes` names the labels.
    """

    def __init__(self, root, train=True):
        folder = Path(root)
        if (folder / "cifar-10-batches-py").is_dir():
            folder = folder / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        missing = [name for name in [*files, "batches.meta"] if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 not found in '{folder}' (missing {', '.join(missing)}).\n"
                f"Download the python version (163 MB) from {CIFAR10_URL} and extract it, e.g.\n"
                f"    curl -O {CIFAR10_URL} && tar xzf cifar-10-python.tar.gz\n"
                "then pass the extracted folder: CIFAR10Dataset('cifar-10-batches-py')."
            )
        ### HINT: unpickle each file; stack b"data" rows and reshape to (N, 3, 32, 32) uint8; concatenate b"labels" as int64
        ### BEGIN SOLUTION
        batches = [_unpickle(folder / name) for name in files]
        self.images = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
        self.labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
        ### END SOLUTION
        self.classes = [name.decode() for name in _unpickle(folder / "batches.meta")[b"label_names"]]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index].astype(np.float32) / 255.0, self.labels[index]

    def get_batch(self, indices):
        return self[indices]  # the same indexing works for an index array, vectorised


# %% [markdown]
# ### 🧪 Check: a tiny CIFAR-10 folder in the real format, and the message when it is absent

# %%
def write_fake_cifar(folder, per_batch=4):
    """A miniature cifar-10-batches-py: same files, same pickled dicts, `per_batch` images each."""
    folder = Path(folder) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, handle)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = np.full((per_batch, 3072), k, dtype=np.uint8)
        data[:, 1024:2048] = 255  # the green plane
        batch = {b"batch_label": name.encode(), b"labels": [(k + i) % 10 for i in range(per_batch)],
                 b"data": data, b"filenames": [b"x.png"] * per_batch}  # fmt: skip
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)


with tempfile.TemporaryDirectory() as tmp:
    write_fake_cifar(tmp)
    cifar = CIFAR10Dataset(tmp)
    assert len(cifar) == 20 and len(CIFAR10Dataset(tmp, train=False)) == 4 and cifar.classes[3] == "cat"
    image, label = cifar[5]  # second file (k = 1), second image
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and label == 2
    assert np.allclose(image[1], 1.0) and np.allclose(image[0], 1 / 255)
    xb, yb = next(iter(DataLoader(cifar, batch_size=8)))
    assert xb.shape == (8, 3, 32, 32) and yb.data.tolist() == [0, 1, 2, 3, 1, 2, 3, 4]
    try:
        CIFAR10Dataset(Path(tmp) / "nowhere")
        raise AssertionError("expected FileNotFoundError")
    except FileNotFoundError as error:
        assert CIFAR10_URL in str(error)
        print(str(error).splitlines()[0])

# %% [markdown]
# ## 6. Keeping activations stable: batch normalisation
#
# Module 04 chose initial weights so that activations keep a spread near 1 through many layers --
# at the start. Training changes the weights, and with them the scale of every layer's input: a
# layer keeps chasing a moving target, and a careless learning rate sends activations to 1e4 and
# beyond. **Batch normalisation** (Ioffe & Szegedy, 2015) resets the scale inside the network:
# for each feature, over the examples of the batch,
#
# ```
#   mean  μ = mean over the batch of x            x_hat = (x - μ) / sqrt(σ² + eps)
#   var  σ² = mean over the batch of (x - μ)²     y     = gamma · x_hat + beta
#
#   x (N, F)  ─ each column normalised on its own ─►  columns with mean 0, variance 1
#                                                     then scaled by gamma, shifted by beta
# ```
#
# `gamma` and `beta` are **parameters** (one per feature, starting at 1 and 0): if a layer wants
# another scale, it can learn it back. `eps` (1e-5) keeps the division finite when a feature is
# constant -- then `x - μ` is exactly 0 and the output is just `beta`.
#
# **Train and eval differ.** At test time there may be a single example: no batch to average
# over. So during training the layer also keeps exponential moving averages of the batch
# statistics, the **running** mean and variance, and `model.eval()` uses those instead:
#
# ```
#   running_mean ← (1 - momentum) · running_mean + momentum · μ
#   running_var  ← (1 - momentum) · running_var  + momentum · σ² · N / (N - 1)   (unbiased, as PyTorch)
# ```
#
# They are **buffers** (`register_buffer`, Module 04): saved by `state_dict()`, never touched by
# an optimizer.
#
# For images, `BatchNorm2D` normalises each **channel** over the batch *and* all pixels: the
# statistics of a (N, C, H, W) batch are taken over axes (0, 2, 3). `BatchNorm1D` takes (N, F) (or
# (N, C, L), over axes 0 and 2).
#
# **One recorded operation for x̂.** Written with Tensor operations (mean, subtract, multiply,
# power), x̂ would work with autograd at once -- and the graph would keep two activation-sized
# arrays per layer for the backward pass (`x - μ`, read by the square and by the scaling, and x̂,
# read by the multiplication with gamma; Module 02 section 6). `normalize(x, axes, eps)` computes
# x̂ in NumPy and records it as one operation, "normalize", keeping only x̂ and the small `rstd` =
# 1/√(σ² + eps): Module 09 gives it its own rule. The measurement after the checks compares both.
#
# First the definition, a loop over features:

# %%
def batchnorm_naive(x, eps=1e-5):
    """Normalise each column of a (N, F) array on its own, one feature at a time."""
    out = np.empty_like(x)
    for f in range(x.shape[1]):
        column = x[:, f]
        mean = column.mean()
        var = ((column - mean) ** 2).mean()
        out[:, f] = (column - mean) / np.sqrt(var + eps)
    return out


# %% [markdown]
# The vectorised layer takes the means over the batch axes with `keepdims=True`, so the statistics
# broadcast back against `x`. We subtract the mean **before** squaring (two passes over the data)
# rather than computing `mean(x²) - mean(x)²` in one: with values near 1e4 and a spread of 1, the
# one-pass formula subtracts two numbers near 1e8 that float32 only knows to about 8 -- the
# variance it gives is noise, or even negative.

# %%
#| export core.normalization
import numpy as np

from tinytorch.core.layers import Module, Parameter
from tinytorch.core.tensor import Tensor


def normalize(x, axes, eps):
    """x_hat = (x - mean) / sqrt(var + eps), the statistics taken over `axes` (kept as size-1 axes).

    Returns (x_hat, mean, var): a Tensor and the two statistics as arrays. Recorded as "normalize",
    saving `axes` and `rstd` = 1 / sqrt(var + eps) and keeping the output; Module 09's
    `_normalize_backward` runs it backwards.
    """
    ### HINT: Two passes in NumPy on x.data: the mean over `axes` (keepdims), then the variance of the centred values
    ### HINT: (centre before squaring); rstd = 1 / sqrt(var + eps); record centred * rstd with Tensor.from_op,
    ### HINT: keeping the output and saving axes and rstd.
    ### BEGIN SOLUTION
    mean = x.data.mean(axis=axes, keepdims=True)
    centered = x.data - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    x_hat = Tensor.from_op(centered * rstd, "normalize", (x,), ("output",), axes=axes, rstd=rstd)
    ### END SOLUTION
    return x_hat, mean, var


class _BatchNorm(Module):
    """Shared machinery of BatchNorm1D and BatchNorm2D: per-feature statistics over `_axes(x)`."""

    aliases = {"weight": "gamma", "bias": "beta"}  # PyTorch's names for the same parameters

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = Parameter(np.ones(num_features, dtype=np.float32))
        self.beta = Parameter(np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def _axes(self, x):
        raise NotImplementedError

    def forward(self, x):
        axes = self._axes(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)  # features live on axis 1
        ### HINT: training: count = values per feature (x.size // num_features), fewer than 2 is a ValueError; x_hat and
        ### HINT: the batch statistics from normalize(x, axes, eps); give _update_running one value per feature (the
        ### HINT: statistics flattened) and count. Eval: x_hat = (x - running mean) * (running var + eps) ** -0.5, the
        ### HINT: buffers reshaped to `shape` (constants). Then y = x_hat * gamma + beta, gamma and beta being
        ### HINT: (num_features,) parameters reshaped to `shape` so that they broadcast.
        ### BEGIN SOLUTION
        if self.training:
            count = x.size // self.num_features
            if count < 2:
                raise ValueError(f"{type(self).__name__} needs more than one value per feature to train, got {x.shape}")
            x_hat, mean, var = normalize(x, axes, self.eps)
            self._update_running(mean.ravel(), var.ravel(), count)
        else:
            scale = (self.running_var.reshape(shape) + self.eps) ** -0.5
            x_hat = (x - Tensor(self.running_mean.reshape(shape))) * Tensor(scale)
        return x_hat * self.gamma.reshape(shape) + self.beta.reshape(shape)
        ### END SOLUTION

    def _update_running(self, mean, var, count):
        """Move the running statistics towards this batch's, in place (the buffers stay the same arrays)."""
        m = self.momentum
        self.running_mean[...] = (1 - m) * self.running_mean + m * mean
        self.running_var[...] = (1 - m) * self.running_var + m * var * count / (count - 1)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of (N, F) features, or (N, C, L) sequences per channel."""

    def _axes(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1D({self.num_features}) expects (N, {self.num_features}[, L]), got {x.shape}")
        return (0,) if x.ndim == 2 else (0, 2)


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images, per channel over the batch and all pixels."""

    def _axes(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2D({self.num_features}) expects (N, {self.num_features}, H, W), got {x.shape}")
        return (0, 2, 3)


BatchNorm1d = BatchNorm1D  # PyTorch's spellings
BatchNorm2d = BatchNorm2D

# %% [markdown]
# **Coming from PyTorch**: `BatchNorm1d`/`BatchNorm2d` are the same classes, and `bn.weight` /
# `bn.bias` are `gamma` / `beta` (Module 04's `aliases`). PyTorch's state dict also holds a
# `num_batches_tracked` counter, which we do not keep (it only matters for `momentum=None`).

# %% [markdown]
# ### 🧪 Check: BatchNorm against NumPy, running statistics, train against eval

# %%
set_seed(0)
features = (rng().standard_normal((64, 5)) * [1, 10, 100, 0.1, 3] + [5, -2, 1e3, 0, 7]).astype(np.float32)
bn = BatchNorm1D(5)
out = bn(Tensor(features)).data
assert np.allclose(out, batchnorm_naive(features), atol=1e-4)
assert np.allclose(out.mean(axis=0), 0, atol=1e-5) and np.allclose(out.var(axis=0), 1, atol=1e-3)
assert np.allclose(bn.running_mean, 0.1 * features.mean(axis=0), rtol=1e-5)
assert np.allclose(bn.running_var, 0.9 + 0.1 * features.var(axis=0, ddof=1), rtol=1e-5)
assert [name for name, _ in bn.named_parameters()] == ["gamma", "beta"]
assert list(bn.state_dict()) == ["gamma", "beta", "running_mean", "running_var"]
bn.eval()
one = bn(Tensor(features[:1])).data  # eval: a single example works, using the running statistics
expected = (features[:1] - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
assert np.allclose(one, expected, atol=1e-5)

images_bn = rng().standard_normal((8, 3, 5, 5)).astype(np.float32) * 4 + 2
out2d = BatchNorm2D(3)(Tensor(images_bn)).data
assert np.allclose(out2d.mean(axis=(0, 2, 3)), 0, atol=1e-5) and np.allclose(out2d.var(axis=(0, 2, 3)), 1, atol=1e-3)

# %% [markdown]
# ### 🧪 Check: stable on extreme and constant inputs
#
# Values of 1e4 with a spread of 1: the two-pass variance is right, the one-pass formula is not.

# %%
extreme = (1e4 + rng().standard_normal((256, 3))).astype(np.float32)
one_pass = (extreme**2).mean(axis=0) - extreme.mean(axis=0) ** 2
two_pass = ((extreme - extreme.mean(axis=0)) ** 2).mean(axis=0)
print(f"variance of 1e4 + N(0, 1) in float32: one pass {one_pass.round(2)}, two passes {two_pass.round(3)}")
with np.errstate(all="raise"):
    stable = BatchNorm1D(3)(Tensor(extreme)).data
    constant = BatchNorm1D(3)(Tensor(np.full((16, 3), 7.0, dtype=np.float32))).data
assert np.allclose(stable.var(axis=0), 1, atol=1e-2) and np.all(constant == 0.0)

# %% [markdown]
# ### What it costs (measured)

# %%
wide = rng().standard_normal((256, 512)).astype(np.float32)
bn_wide = BatchNorm1D(512)
naive_s, naive_out = time_it(batchnorm_naive, wide, repeat=3)
fast_s, fast_out = time_it(lambda: bn_wide(Tensor(wide)).data)
assert np.allclose(naive_out, fast_out, atol=1e-4)
print(f"BatchNorm on (256, 512): loop over features {naive_s * 1e3:.1f} ms, vectorised {fast_s * 1e3:.2f} ms "
      f"({naive_s / fast_s:.0f}x)")  # fmt: skip
graph_bytes, kept = peak_memory(lambda: bn_wide(Tensor(wide, requires_grad=True)))
print(f"training-mode forward with a graph: {graph_bytes / wide.nbytes:.1f}x the input's {wide.nbytes:,} bytes")


def x_hat_from_tensor_ops(x, axes=(0,), eps=1e-5):
    """x_hat as a chain of recorded Tensor operations: the graph keeps what each of their rules reads."""
    centered = x - x.mean(axis=axes, keepdims=True)
    return centered * ((centered * centered).mean(axis=axes, keepdims=True) + eps) ** -0.5


inputs = Tensor(wide, requires_grad=True)
chain_bytes, chained = held_memory(lambda: x_hat_from_tensor_ops(inputs) * bn_wide.gamma)
one_op_bytes, fused = held_memory(lambda: normalize(inputs, (0,), 1e-5)[0] * bn_wide.gamma)
assert np.allclose(chained.data, fused.data, atol=1e-5)
assert one_op_bytes < 2.2 * wide.nbytes < chain_bytes, (one_op_bytes, chain_bytes)
print(f"x_hat * gamma with its graph: {chain_bytes / wide.nbytes:.1f}x the input's bytes as a chain of Tensor "
      f"operations, {one_op_bytes / wide.nbytes:.1f}x as one recorded operation")  # fmt: skip

# %% [markdown]
# Each elementwise step (centre, square, scale, shift) reads and writes a full copy of the batch,
# and while a graph is being recorded every intermediate stays alive for the backward pass: batch
# norm costs a few extra activation-sized arrays per layer. The per-feature statistics are tiny.
#
# ## 7. LayerNorm: normalise each example, not each feature
#
# Batch statistics have two weaknesses: they need a batch (and behave differently at test time),
# and in a sequence model the "batch" mixes positions of different sentences. **Layer
# normalisation** (Ba et al., 2016) instead normalises each example over its own last axes -- the
# `normalized_shape` -- which is why transformers (Module 16) use it. No running statistics: train
# and eval are the same computation.
#
# ```
#   BatchNorm1D: statistics down each column      LayerNorm: statistics along each row
#   x (N, F)  ↓ ↓ ↓ ↓                              x (N, F)  → → → →
# ```

# %%
#| export core.normalization
class LayerNorm(Module):
    """Normalise over the last len(normalized_shape) axes of each example; gamma/beta of that shape."""

    aliases = {"weight": "gamma", "bias": "beta"}  # PyTorch's names for the same parameters

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.gamma = Parameter(np.ones(shape, dtype=np.float32))
        self.beta = Parameter(np.zeros(shape, dtype=np.float32))

    def forward(self, x):
        if x.shape[x.ndim - len(self.normalized_shape) :] != self.normalized_shape:
            raise ValueError(f"LayerNorm{self.normalized_shape} does not match the trailing axes of {x.shape}")
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        ### HINT: normalize over `axes` (its statistics are not needed: no running averages); gamma and beta broadcast as
        ### HINT: they are
        ### BEGIN SOLUTION
        x_hat, _, _ = normalize(x, axes, self.eps)
        return x_hat * self.gamma + self.beta
        ### END SOLUTION

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


# %% [markdown]
# ### 🧪 Check: LayerNorm against NumPy, and a deep network kept stable

# %%
tokens = (rng().standard_normal((4, 6, 16)) * 50 + 3).astype(np.float32)
ln = LayerNorm(16)
ln.gamma.data[:] = np.linspace(0.5, 2, 16)
ln.beta.data[:] = 0.25
reference = (tokens - tokens.mean(-1, keepdims=True)) / np.sqrt(tokens.var(-1, keepdims=True) + 1e-5)
assert np.allclose(ln(Tensor(tokens)).data, reference * ln.gamma.data + 0.25, atol=1e-4)
assert np.allclose(LayerNorm((6, 16))(Tensor(tokens)).data.reshape(4, -1).std(axis=1), 1, atol=1e-3)

# %% [markdown]
# Finally, what normalisation is for. Twenty Xavier-initialised Dense + ReLU layers (Module 04)
# shrink the spread of the activations by about √2 each; with a `BatchNorm1D` after every Dense
# layer it stays put, whatever the depth or the scale of the input.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense


def spread_after(depth, normalise, scale=1.0):
    set_seed(3)
    x = Tensor((rng().standard_normal((256, 128)) * scale).astype(np.float32))
    for _ in range(depth):
        x = Dense(128, 128)(x)
        x = ReLU()(BatchNorm1D(128)(x) if normalise else x)
    return float(x.data.std())


for scale in (1.0, 1e4):
    plain, normed = spread_after(20, False, scale), spread_after(20, True, scale)
    print(f"input scale {scale:g}: std after 20 layers  plain {plain:.3g}   with BatchNorm1D {normed:.3g}")
    assert 0.4 < normed < 1.0  # ReLU of a standard normal has std 0.58
assert spread_after(20, False) < 0.01

# %% [markdown]
# ## What you built
#
# `Dataset`, `TensorDataset`, `DataLoader` (shuffling reproducible with a seed, `drop_last`,
# vectorised batches), transforms (`Normalize`, `RandomCrop`, `RandomHorizontalFlip`, `Compose`),
# the shipped digits with the course's fixed split (`load_digits`, `digits_split`), the CIFAR-10
# reader, and `BatchNorm1D`, `BatchNorm2D`, `LayerNorm` -- stable on extreme inputs, with
# train/eval behaviour and running statistics. Run `tito module complete 08_dataloader` to unlock
# checkpoint 07. Next: **Module 09 · Autograd**, where all of this starts to learn.
