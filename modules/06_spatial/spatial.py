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
# # Module 06 · Spatial: convolution and pooling
#
# A dense layer treats an image as a bag of unrelated numbers: move the cat two pixels to the left
# and every input feature changes. Images have **structure**: nearby pixels belong together, and a
# pattern (an edge, an eye) means the same thing wherever it appears. A convolution exploits both:
# it slides one small set of weights -- a kernel -- over every position of the image.
#
# ```
#   input channel (5×5)           kernel (3×3)      output (3×3)
#   ┌───┬───┬───┬───┬───┐
#   │ a │ b │ c │ · │ · │         ┌───┬───┬───┐     ┌───┬───┬───┐
#   ├───┼───┼───┼───┼───┤         │w00│w01│w02│     │ y │ · │ · │   y = a·w00 + b·w01 + c·w02
#   │ d │ e │ f │ · │ · │    ⊛    ├───┼───┼───┤  =  ├───┼───┼───┤     + d·w10 + ... + i·w22
#   ├───┼───┼───┼───┼───┤         │w10│w11│w12│     │ · │ · │ · │     + bias
#   │ g │ h │ i │ · │ · │         ├───┼───┼───┤     ├───┼───┼───┤
#   ├───┼───┼───┼───┼───┤         │w20│w21│w22│     │ · │ · │ · │   then slide one pixel right
#   │ · │ · │ · │ · │ · │         └───┴───┴───┘     └───┴───┴───┘
#   └───┴───┴───┴───┴───┘
# ```
#
# With C input channels the kernel has C slices and the products of all channels are summed; with
# OC output channels there are OC kernels. Tensors are **NCHW**: (batch, channels, height, width).
# A 3×3 convolution from 3 to 16 channels has only 16·3·3·3 + 16 = 448 parameters, whatever the
# image size -- a dense layer between two 32×32 images with those channels would need 50 million.
#
# Two knobs change the output size. **Padding** p adds p rows/columns of zeros around the input
# (so borders are seen as often as centres, and "same" size is possible); **stride** s moves the
# kernel s pixels at a time (downsampling):
#
# `OH = (H + 2p - KH) // s + 1`, likewise for the width.
#
# **Pooling** summarises each window by its maximum (MaxPool2D) or mean (AvgPool2D): no weights,
# a smaller image, a little robustness to small shifts.
#
# The plan: the loops of the definition, then the trick that turns convolution into one matrix
# product (**im2col**), measured against each other on a CIFAR-sized batch (32, 3, 32, 32).

# %%
#| default_exp core.spatial

# %%
#| export
import numpy as np

from tinytorch.core.layers import Module, Parameter, check_shape, kaiming_uniform
from tinytorch.core.setup import map_chunks
from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Flatten, Sequential, summary
from tinytorch.core.setup import num_threads, peak_memory, set_seed, system_info, time_it

# %% [markdown]
# ## 1. The naive convolution: the definition, as loops
#
# `out[n, oc, oh, ow] = bias[oc] + Σ_c Σ_kh Σ_kw  x_padded[n, c, oh·s + kh, ow·s + kw] · w[oc, c, kh, kw]`
#
# One loop per index: the four of the output, the three of the sum. It is the reference every
# faster version must agree with.

# %%
#| export
def output_size(size, kernel, stride, padding):
    """Positions a kernel of size `kernel` takes along an axis of `size` pixels."""
    return (size + 2 * padding - kernel) // stride + 1


# %%
def conv2d_naive(x, weights, bias, stride=1, padding=0):
    """Convolution of x (N, C, H, W) with weights (OC, C, KH, KW), one multiply-add at a time."""
    N, C, H, W = x.shape
    OC, _, KH, KW = weights.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH, OW = output_size(H, KH, stride, padding), output_size(W, KW, stride, padding)
    out = np.zeros((N, OC, OH, OW), dtype=x.dtype)
    for n in range(N):
        for oc in range(OC):
            for oh in range(OH):
                for ow in range(OW):
                    total = bias[oc]
                    for c in range(C):
                        for kh in range(KH):
                            for kw in range(KW):
                                total += x[n, c, oh * stride + kh, ow * stride + kw] * weights[oc, c, kh, kw]
                    out[n, oc, oh, ow] = total
    return out


# %% [markdown]
# ### 🧪 Check: an edge detector on a step image, by hand
#
# A 4×4 image, dark (0) on the left half and bright (1) on the right. The kernel `[[-1, 1]]` (1×2)
# computes "right pixel minus left pixel": zero in flat regions, 1 exactly on the step.

# %%
step = np.array([[[[0, 0, 1, 1]] * 4]], dtype=np.float32)  # (1, 1, 4, 4)
edge = np.array([[[[-1.0, 1.0]]]], dtype=np.float32)  # (1, 1, 1, 2)
edges = conv2d_naive(step, edge, np.zeros(1, dtype=np.float32))
assert edges.shape == (1, 1, 4, 3) and edges[0, 0].tolist() == [[0.0, 1.0, 0.0]] * 4
print("step image rows: [0 0 1 1] -> horizontal edges:", edges[0, 0, 0].tolist())

# %% [markdown]
# ## 2. im2col: every window as a row, one matrix product for all of them
#
# Each output value is a dot product between one window of the input (C·KH·KW numbers) and one
# kernel (the same C·KH·KW numbers of weights). So lay every window out as a column of a matrix,
# every kernel as a row of another, and a single matrix product computes the whole convolution:
#
# ```
#   kernels (OC, C·KH·KW)   @   windows (C·KH·KW, N·OH·OW)   =   out (OC, N·OH·OW)
#   ┌─── kernel 0 ───┐          ┌─┬─┬─┬─────┬─┐                  ┌──────────────┐
#   ├─── kernel 1 ───┤          │w│w│w│ ... │w│  one column per  │ OC × (N·OH·OW)│ -> reshape to
#   └─── ...      ───┘          │0│1│2│     │ │  window          └──────────────┘    (N, OC, OH, OW)
# ```
#
# Finding the windows needs no copy at all. A NumPy array is memory plus *strides* (bytes to step
# along each axis); `np.lib.stride_tricks.sliding_window_view` makes a view of shape
# `(N, C, OH, OW, KH, KW)` whose last two axes step through a window with the input's own strides,
# and whose (OH, OW) axes step from one window to the next. A stride s > 1 is a slice `[::s]`
# of the window starts, still a view. Only the **padding** allocates (a padded copy of the input),
# so at padding 0 skip `np.pad` altogether: `im2col` must then return a view of the input's memory.
#
# The copy comes when the matrix is formed: every pixel appears in up to KH·KW windows, so the
# window matrix is about KH·KW times the size of the input (9× for 3×3). That memory is the price of
# handing the arithmetic to BLAS in one call.
#
# `im2col` is the one new operation of this module, recorded as `"im2col"` with what its backward
# rule (Module 09) needs: the input shape, kernel size, stride and padding. Its gradient is
# "col2im": each window's gradient added back to the pixels it was read from.

# %%
#| export
def _pair(value):
    """(value, value) for an int, the tuple itself otherwise: kernel sizes may be 3 or (3, 5)."""
    return (int(value), int(value)) if np.isscalar(value) else tuple(int(v) for v in value)


def _same_both_ways(value, name):
    """A stride or padding as one int; PyTorch's pair spelling (2, 2) is accepted when both agree."""
    first, second = _pair(value)
    if first != second:
        raise ValueError(f"{name}={value}: a different {name} along height and width is not supported")
    return first


def im2col(x, kernel_size, stride=1, padding=0):
    """Every (KH, KW) window of a (N, C, H, W) tensor, as a (N, C, OH, OW, KH, KW) strided view.

    The input is zero-padded by `padding` on each side of H and W; windows start every `stride`
    pixels. No pixel is copied (apart from the padding): the result is a view whose strides revisit
    the input's memory.

    Recorded as "im2col", saving `input_shape`, `kernel_size`, `stride` and `padding`; Module 09's
    `_im2col_backward` runs it backwards.
    """
    kernel_size = _pair(kernel_size)
    stride, padding = int(stride), int(padding)
    ### HINT: Set `windows`. Pad H and W only when padding > 0: np.pad always copies, and at padding 0 the result must
    ### HINT: stay a view of x.data. A sliding-window view over the H and W axes gives every window; a stride keeps
    ### HINT: every stride-th window start along H and W.
    ### BEGIN SOLUTION
    data = x.data
    if padding:
        data = np.pad(data, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(data, kernel_size, axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    ### END SOLUTION
    return Tensor.from_op(
        windows, "im2col", (x,), input_shape=x.shape, kernel_size=kernel_size, stride=stride, padding=padding
    )


# %% [markdown]
# ### 🧪 Check: the windows are the right pixels, and free

# %%
x_np = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6)
windows = im2col(Tensor(x_np), (3, 2), stride=2)
assert windows.shape == (2, 3, 2, 3, 3, 2)  # OH = (5-3)//2+1 = 2, OW = (6-2)//2+1 = 3
assert np.array_equal(windows.data[1, 2, 1, 2], x_np[1, 2, 2:5, 4:6])  # window at (oh, ow) = (1, 2)
assert np.shares_memory(windows.data, x_np)  # a view: no pixel copied
padded = im2col(Tensor(x_np), 3, padding=1)
assert padded.shape == (2, 3, 5, 6, 3, 3) and padded.data[0, 0, 0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 6, 7]]
recorded = im2col(Tensor(x_np, requires_grad=True), 3, stride=2, padding=1)
assert recorded._op == "im2col" and recorded._saved == {
    "input_shape": (2, 3, 5, 6), "kernel_size": (3, 3), "stride": 2, "padding": 1
}  # fmt: skip

# %% [markdown]
# ## 3. Conv2D: im2col, one matrix product, a reshape
#
# The layer owns `weights` of shape (OC, C, KH, KW) and `bias` (OC,). The computation, on arrays,
# for a chunk of n images of the batch (why chunks: below):
#
# ```
#   im2col(x)[chunk]                  (n, C, OH, OW, KH, KW)   a view
#   .transpose(1, 4, 5, 0, 2, 3)      (C, KH, KW, n, OH, OW)   still a view
#   .reshape(C·KH·KW, n·OH·OW)        the window matrix        the one copy   (window_matrix)
#   weights.reshape(OC, C·KH·KW) @    (OC, n·OH·OW)            BLAS
#   += bias[:, None]                  along each row, in place
#   .reshape(OC, n, OH, OW)
#   .transpose(1, 0, 2, 3)            (n, OC, OH, OW)          written into out[chunk]
# ```
#
# **One recorded operation, not seven.** Every step above is also a recorded Tensor operation, so
# chaining them (`im2col(x).permute(...).reshape(...)`, `weights.reshape(...) @ ...`) would train
# as it is once Module 09 exists. But then backward runs seven rules, each in the layout its step
# left behind: the gradient is copied back and forth between layouts, the small kernel matrix is
# multiplied *transposed* (a slow path of BLAS), and the windows' gradients are added back to the
# input in an order unrelated to where they lie in memory. So frameworks record a convolution as
# **one** operation, `"conv2d"`, and write its backward rule by hand in the layout of the forward
# product. Module 09 writes the rule and measures both: the chain's forward + backward is 1.2x to
# 2x slower (section 10 there).
#
# **A few images at a time.** The window matrix of the whole batch is nine times the input (for a
# 3×3 kernel): 3.5 MB for 32 CIFAR images, 9.4 MB for the wide case of `make bench`. Built in one
# piece, it is written to main memory and read back from it by the product, and a buffer that
# large is handed back to the operating system when freed and page-faulted in again at the next
# step. `batch_chunks` cuts the batch into slices whose window matrix holds about
# `WINDOW_MATRIX_BYTES` = 512 KB: it stays in the core's cache between the copy and the product, and
# the allocator hands the same block from chunk to chunk. The operation then keeps only the im2col
# **view** for backward (the padded input, not the window matrix), and the rule rebuilds each
# chunk's window matrix when it needs it: a copy, which costs less than keeping nine copies of the
# input alive from forward to backward. The measurement after the checks compares the two.
#
# Why windows as *columns* with (n, OH, OW) last, rather than the textbook rows
# `(n·OH·OW, C·KH·KW) @ weights.T`? Speed: the copy then runs along the input's rows (OW
# consecutive pixels for stride 1) instead of hopping KW pixels at a time, and the bias is added
# along long rows. Both orders give the same numbers; section 3's measurement compares them.
#
# Initialisation: Kaiming uniform (Module 04) with fan_in = C·KH·KW, since convolutions are almost
# always followed by ReLU.

# %%
#| export
WINDOW_MATRIX_BYTES = 1 << 19  # one chunk's window matrix: half of a 1 MB L2 cache (section 3's measurement)


def batch_chunks(windows):
    """Slices of the batch axis of (N, C, OH, OW, KH, KW) windows, each a few images whose window
    matrix holds about WINDOW_MATRIX_BYTES (at least one image per slice)."""
    images_per_chunk = max(1, WINDOW_MATRIX_BYTES // (windows[0].size * windows.itemsize))
    return [slice(start, start + images_per_chunk) for start in range(0, windows.shape[0], images_per_chunk)]


def window_matrix(windows):
    """(n, C, OH, OW, KH, KW) windows -> the (C·KH·KW, n·OH·OW) window matrix: the one copy of im2col."""
    n, C, OH, OW, KH, KW = windows.shape
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * KH * KW, n * OH * OW)


def convolve(windows, kernels, bias=None):
    """Windows (N, C, OH, OW, KH, KW) times kernels (OC, C·KH·KW), plus bias (OC,) or None -> (N, OC, OH, OW).

    Arrays in, an array out, a chunk of images at a time (`batch_chunks`), the chunks spread over
    the framework's threads (`map_chunks`: end of section 3); conv2d records it, and Module 09's rule
    calls it again for the input's gradient.
    """
    N, _, OH, OW = windows.shape[:4]
    ### HINT: Follow the diagram for one slice of images from `batch_chunks`, in a function of the slice: the kernels
    ### HINT: times that slice's window matrix; the bias added to each row in place; the product written into the
    ### HINT: slice's images of an (N, OC, OH, OW) output. Then let `map_chunks` run it for every slice.
    ### BEGIN SOLUTION
    out = np.empty((kernels.shape[0], N, OH, OW), dtype=np.result_type(windows, kernels))  # the product's layout

    def convolve_chunk(chunk):  # each chunk writes only its own images of `out`: chunks can run at once
        product = out[:, chunk].reshape(len(out), -1)  # (OC, n·OH·OW): a view, rows N·OH·OW apart
        np.matmul(kernels, window_matrix(windows[chunk]), out=product)
        if bias is not None:
            product += bias[:, None]

    map_chunks(convolve_chunk, batch_chunks(windows))
    ### END SOLUTION
    return out.transpose(1, 0, 2, 3)


def conv2d(x, weights, bias=None, stride=1, padding=0):
    """Convolution of x (N, C, H, W) with weights (OC, C, KH, KW) and bias (OC,) or None -> (N, OC, OH, OW).

    The im2col windows convolved with the kernels as rows (`convolve`), recorded as one operation,
    "conv2d", saving the im2col view `windows` (N, C, OH, OW, KH, KW), `stride` and `padding`, and
    keeping the inputs (the rule reads the weights); Module 09's `_conv2d_backward` runs it backwards.
    """
    windows = im2col(x, weights.shape[2:], stride, padding).data
    kernels = weights.data.reshape(weights.shape[0], -1)  # (OC, C·KH·KW)
    out = convolve(windows, kernels, None if bias is None else bias.data)
    parents = (x, weights) if bias is None else (x, weights, bias)
    return Tensor.from_op(out, "conv2d", parents, ("inputs",), windows=windows, stride=stride, padding=padding)


class Conv2D(Module):
    """2-D convolution of (N, C, H, W) inputs; weights (out_channels, in_channels, KH, KW), bias (out_channels,)."""

    aliases = {"weight": "weights"}  # PyTorch's name; the layout (out, in, KH, KW) is PyTorch's too

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding = _same_both_ways(stride, "stride"), _same_both_ways(padding, "padding")
        shape = (out_channels, in_channels, *self.kernel_size)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]  # the numbers each output sums
        self.weights = Parameter(kaiming_uniform(shape, fan_in))
        self.bias = Parameter(np.zeros(out_channels, dtype=np.float32)) if bias else None

    def forward(self, x):
        _check_images(self, x, self.in_channels)
        ### HINT: The layer only holds the parameters and the settings; the computation is the conv2d function above.
        ### BEGIN SOLUTION
        return conv2d(x, self.weights, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


def _check_images(layer, x, channels=None):
    """Refuse anything but a (N, C, H, W) batch (with C = `channels` when given), naming both shapes."""
    expected = f"(N, {channels if channels is not None else 'C'}, H, W)"
    if x.ndim == 4 and channels is not None and x.shape[1] != channels and x.shape[3] == channels:
        expected += " -- this looks channels-last (N, H, W, C): use x.permute(0, 3, 1, 2)"
    check_shape(layer, x, expected, x.ndim == 4 and (channels is None or x.shape[1] == channels))


# %% [markdown]
# ### 🧪 Check: Conv2D against the loops, for several strides and paddings

# %%
set_seed(0)
cases = [(1, 1, 2, 1, 0, 4, 4), (3, 4, 3, 1, 1, 7, 6), (2, 5, (3, 2), 2, 1, 8, 7), (3, 2, 5, 3, 2, 9, 9)]
for C, OC, k, stride, padding, H, W in cases:
    conv = Conv2D(C, OC, k, stride=stride, padding=padding)
    conv.bias.data[:] = np.arange(OC) / 10
    x_np = np.random.default_rng(C + OC).standard_normal((2, C, H, W)).astype(np.float32)
    expected = conv2d_naive(x_np, conv.weights.data, conv.bias.data, stride, padding)
    got = conv(Tensor(x_np))
    assert got.shape == expected.shape == (2, OC, output_size(H, conv.kernel_size[0], stride, padding),
                                           output_size(W, conv.kernel_size[1], stride, padding))  # fmt: skip
    assert np.allclose(got.data, expected, atol=1e-5), (C, OC, k, stride, padding)
edge_conv = Conv2D(1, 1, (1, 2), bias=False)
edge_conv.weights.data[:] = edge
assert edge_conv(Tensor(step)).data[0, 0].tolist() == [[0.0, 1.0, 0.0]] * 4
recorded = Conv2D(3, 4, 3, padding=1)(Tensor(np.ones((2, 3, 5, 5), dtype=np.float32)))
assert recorded._op == "conv2d" and recorded._saved["windows"].shape == (2, 3, 5, 5, 3, 3)
print(Conv2D(3, 16, 3, padding=1))

# %% [markdown]
# ### Measured: loops against im2col on a CIFAR-sized batch
#
# The benchmark case: 32 RGB images of 32×32 into 16 channels, 3×3 kernel, padding 1 -- 14.2
# million multiply-adds. The loops would need several seconds for the whole batch, so they run on
# 2 images and we scale by 16.

# %%
set_seed(1)
batch = np.random.default_rng(1).standard_normal((32, 3, 32, 32)).astype(np.float32)
conv = Conv2D(3, 16, 3, padding=1)
loop_s, loop_out = time_it(conv2d_naive, batch[:2], conv.weights.data, conv.bias.data, 1, 1, repeat=1, warmup=0)
loop_s *= 16
fast_s, fast_out = time_it(conv, Tensor(batch), repeat=10)
assert np.allclose(fast_out.data[:2], loop_out, atol=1e-4)
macs = 32 * 16 * 32 * 32 * 3 * 3 * 3
print(f"loops   {loop_s:8.2f} s     ({macs / loop_s / 1e6:6.1f} M multiply-adds/s, scaled from 2 images)")
print(f"im2col  {fast_s * 1e3:8.2f} ms    ({macs / fast_s / 1e9:6.2f} G multiply-adds/s)")
print(f"speed-up: {loop_s / fast_s:,.0f}x")

view_bytes, _ = peak_memory(im2col, Tensor(batch), 3, 1, 0)
copy_bytes, columns = peak_memory(lambda: im2col(Tensor(batch), 3, 1, 1).permute(1, 4, 5, 0, 2, 3).reshape(27, -1))
conv_bytes, _ = peak_memory(conv, Tensor(batch))
print(f"input batch                 {batch.nbytes / 1e6:6.2f} MB")
print(f"im2col view (no padding)    {view_bytes / 1e6:6.2f} MB allocated")
print(f"window matrix {columns.shape}  {copy_bytes / 1e6:6.2f} MB allocated (padding included)")
print(f"whole Conv2D forward        {conv_bytes / 1e6:6.2f} MB peak")
print(f"window matrix {columns.data.nbytes / batch.nbytes:.0f}x the input, output {fast_out.data.nbytes / 1e6:.2f} MB")
assert view_bytes < 10_000 and columns.data.nbytes == 9 * batch.nbytes


def conv_rows_order(x, conv):
    """The textbook layout: one window per row, (N·OH·OW, C·KH·KW) @ weights.T -- same numbers."""
    windows = im2col(x, conv.kernel_size, conv.stride, conv.padding)
    N, C, OH, OW, KH, KW = windows.shape
    rows = windows.permute(0, 2, 3, 1, 4, 5).reshape(N * OH * OW, C * KH * KW)
    out = rows @ conv.weights.reshape(conv.out_channels, -1).T + conv.bias
    return out.reshape(N, OH, OW, conv.out_channels).permute(0, 3, 1, 2)


rows_s, rows_out = time_it(conv_rows_order, Tensor(batch), conv, repeat=10)
assert np.allclose(rows_out.data, fast_out.data, atol=1e-5)
print(f"windows as rows {rows_s * 1e3:.2f} ms, as columns (Conv2D) {fast_s * 1e3:.2f} ms: {rows_s / fast_s:.1f}x")


def conv_one_window_matrix(x, conv):
    """Conv2D's arrays with the window matrix of the whole batch built in one piece -- same numbers."""
    windows = im2col(x, conv.kernel_size, conv.stride, conv.padding).data
    N, _, OH, OW = windows.shape[:4]
    product = conv.weights.data.reshape(conv.out_channels, -1) @ window_matrix(windows)  # all N images at once
    product += conv.bias.data[:, None]
    return product.reshape(-1, N, OH, OW).transpose(1, 0, 2, 3)


assert len(batch_chunks(im2col(Tensor(batch), 3, 1, 1).data)) == 8  # 27·32·32·4 bytes = 108 KB an image: 4 a chunk
whole_s, whole_out = time_it(conv_one_window_matrix, Tensor(batch), conv, repeat=10)
assert np.allclose(whole_out, fast_out.data, atol=1e-5)
whole_bytes, _ = peak_memory(conv_one_window_matrix, Tensor(batch), conv)
print(f"one window matrix {whole_s * 1e3:.2f} ms, {whole_bytes / 1e6:.2f} MB peak; "
      f"chunks of {WINDOW_MATRIX_BYTES // 1024} KB (Conv2D) {fast_s * 1e3:.2f} ms, {conv_bytes / 1e6:.2f} MB peak")

# %% [markdown]
# The loops run at a few million multiply-adds per second -- the interpreter's speed. im2col runs
# at billions: hundreds to thousands of times faster depending on the machine and its load. It is
# paid for with a window matrix nine times the input: 3.5 MB here, but 347 MB for the first layer
# of a batch of 64 ImageNet images (64 × 3 × 224 × 224 × 9 float32 values). Built a chunk at a
# time it is 512 KB whatever the batch, and the forward's peak memory halves (the last line above).
# The forward alone may run a little slower that way -- more, smaller products, each with its own
# call overhead. The time is won in a training step, forward + backward, where whole-batch buffers
# would be allocated, freed and page-faulted in again at every step: Module 09 measures the backward
# and `make bench` the whole step against PyTorch. Frameworks avoid the copy altogether with direct
# or Winograd convolution kernels; Module 13 returns to it.
#
# ### One chunk per core
#
# The chunks are independent: each reads its own images' windows and writes its own images of
# `out`, so two cores can compute two chunks at the same time with no lock. BLAS alone does not
# get us there: it spreads each *product* over the cores, but the window-matrix copy and the bias
# add around it run on one core, about a fifth of the forward on the wide case of `make bench`. So
# `convolve` hands its chunks to Module 01's `map_chunks`, which runs them on the framework's
# pool of `get_num_threads()` workers -- and, inside, limits BLAS to **one** thread per worker:
# two workers each running a two-thread BLAS would ask for four busy threads on two cores, which
# is slower than no workers at all (Module 13, section 5, measures why). Serial and parallel side by
# side:
#
# ```
#   serial: one core at a time                parallel: map_chunks (Conv2D)
#   for chunk in batch_chunks(windows):       map_chunks(convolve_chunk, batch_chunks(windows))
#       convolve_chunk(chunk)                   worker 0: copy + product of a chunk, BLAS 1 thread
#                                               worker 1: copy + product of a chunk, BLAS 1 thread
#                                               (a worker that finishes takes the next chunk)
# ```
#
# The same numbers either way (each chunk is computed the same way, only on another thread); the
# measurement below runs the wide case (16, 64, 16, 16) -> 64 channels, 3×3, 16 chunks of one image,
# with one thread and with two (`num_threads(n)`: Module 01's `set_num_threads(n)` for one `with`
# block). One thread gives the plain loop: `map_chunks` calls `work` on each chunk in turn, on the
# caller's thread.

# %%
wide_input = np.random.default_rng(6).standard_normal((16, 64, 16, 16)).astype(np.float32)
wide_windows = im2col(Tensor(wide_input), 3, 1, 1).data
wide_kernels = np.random.default_rng(7).standard_normal((64, 64 * 3 * 3)).astype(np.float32)
wide_bias = np.random.default_rng(8).standard_normal(64).astype(np.float32)
assert len(batch_chunks(wide_windows)) == 16  # 576·16·16·4 bytes = 590 KB an image: one image a chunk
convolve_s, convolved = {}, {}
for threads in (1, 2):
    with num_threads(threads):
        convolve_s[threads], convolved[threads] = time_it(convolve, wide_windows, wide_kernels, wide_bias, repeat=10)
np.testing.assert_allclose(convolved[2], convolved[1], rtol=1e-5, atol=1e-4)
print(f"convolve on the wide case: serial {convolve_s[1] * 1e3:.2f} ms, 2 workers {convolve_s[2] * 1e3:.2f} ms "
      f"({convolve_s[1] / convolve_s[2]:.2f}x)")
if system_info()["cpu_count"] < 2:
    print("this machine has one core: two workers take turns on it, so no speed-up is to be expected here")

# %% [markdown]
# What to expect on two cores: with BLAS given one thread (as the checkpoints run), the serial loop
# uses one core and two workers use both; with BLAS given two, the serial loop's products already
# use both, and the workers add the copies and the bias add to what runs on both. Measured with
# `make bench`'s harness on our two-core machine, BLAS given two threads, forward + backward (Module
# 09 runs the backward's chunks the same way): the wide case went from 26-34 ms serial to 16-20 ms
# on two workers (PyTorch: 12-15 ms); the CIFAR-sized case did not gain (7.5-7.8 ms serial, 8-10 ms
# on two workers): with 3 input channels its products are small and its chunks mostly copies, which
# two cores sharing one memory do not speed up. When another program takes the second core, two
# workers are slower than one: a worker waits for its core. No gain is possible on one core. Module
# 09's backward rule walks the same chunks with `map_chunks`: each chunk's weight gradient is its
# own partial sum (the partial sums are added in chunk order afterwards, so the result does not
# depend on which worker finished first), and each chunk writes only its own images of the input's
# gradient.
#
# Why PyTorch stays ahead on the wide case at two threads: the three products of a training step are
# 906 million floating-point operations, 7-9 ms on both cores at the 105-135 GFLOP/s that two
# one-thread BLAS products reached together on our machine. The rest of our 16-20 ms is the work
# around them: three window matrices, each nine times the size of the image, copied (forward, the
# input's gradient, the weights' gradient), two paddings, and Python between the NumPy calls.
# PyTorch hands the convolution to oneDNN (`ONEDNN_VERBOSE=1` prints `convolution,jit:avx2`):
# compiled kernels that copy the image once into a layout with channels in blocks of 8, the same
# size, and read every window from there. Fewer multiplications do not rescue NumPy either.
# Winograd's F(2×2, 3×3) algorithm, which libraries such as cuDNN use for 3×3 kernels, needs 2.25
# times fewer: it transforms 4×4 tiles of the input and the 3×3 kernels so that a convolution
# becomes 16 smaller matrix products. We wrote it in NumPy while building this module (forward and
# backward; it is not part of TinyTorch) and measured it on the wide case: 22-32 ms a step on one
# thread, like im2col's 22-32 ms, and 24-37 ms on two threads against im2col's 14-23 ms. Its tile
# transforms are a dozen elementwise passes over four times the input, and in NumPy they cost what
# the products save. A count of multiplications is not a time; the passes over memory are.
#
# ## 4. Pooling: the maximum or mean of each window
#
# ```
#   ┌───┬───┬───┬───┐
#   │ 1 │ 3 │ 2 │ 1 │   MaxPool2D(2)   ┌───┬───┐    AvgPool2D(2)   ┌─────┬─────┐
#   ├───┼───┼───┼───┤   ───────────►   │ 6 │ 4 │    ──────────►    │ 3.5 │ 2.0 │
#   │ 4 │ 6 │ 1 │ 4 │                  ├───┼───┤                   ├─────┼─────┤
#   ├───┼───┼───┼───┤                  │ 8 │ 9 │                   │ 5.0 │ 4.5 │
#   │ 7 │ 8 │ 0 │ 9 │                  └───┴───┘                   └─────┴─────┘
#   ├───┼───┼───┼───┤
#   │ 2 │ 3 │ 5 │ 4 │
#   └───┴───┴───┴───┘
# ```
#
# Each channel is pooled on its own. The stride defaults to the kernel size (windows side by side,
# as in PyTorch). The naive version loops over window positions; the vectorised one reuses im2col:
# gather each window's KH·KW values along one axis and reduce that axis with the recorded `max` or
# `mean`.
#
# Which axis? The natural choice, the last -- `(N, C, OH, OW, KH·KW)` -- makes NumPy run a tiny
# inner loop of 4 values per output number. Putting the window axis **first** --
# `(KH·KW, N, C, OH, OW)` -- turns the reduction into KH·KW - 1 elementwise maxima of whole
# (N, C, OH, OW) slabs, long contiguous loops that NumPy vectorises with SIMD. Same numbers; the
# measurement below shows the difference.
#
# `MaxPool2D` goes further and gathers nothing. A maximum is **separable**: the largest value of a
# window is the largest of its rows' maxima. Row i of every window is a strided slice of whole image
# rows, `x[:, :, i : i + stride·OH : stride]` (N, C, OH, W), so KH - 1 elementwise maxima of such
# slices reduce every window to one row -- long runs of neighbouring pixels, which NumPy reads fast
# -- and KW - 1 maxima of strided column slices of that half-size result finish the job. No 2 MB
# copy of the windows first, and half the passes of taking the KH·KW window offsets one by one. It
# runs on one thread (why: after the measurement) and is recorded as one operation, "max_pool2d",
# whose rule Module 09 writes; `AvgPool2D` keeps the window-first reduction with the recorded `mean`.

# %%
def pool_naive(x, kernel, stride, reduce):
    """Pool each channel of x (N, C, H, W) with `reduce` (np.max or np.mean) over kernel×kernel windows."""
    N, C, H, W = x.shape
    OH, OW = output_size(H, kernel, stride, 0), output_size(W, kernel, stride, 0)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            window = x[:, :, oh * stride : oh * stride + kernel, ow * stride : ow * stride + kernel]
            out[:, :, oh, ow] = reduce(window, axis=(2, 3))
    return out


# %%
#| export
def max_pool2d(x, kernel_size, stride):
    """The maximum of each (KH, KW) window of x (N, C, H, W), per channel -> (N, C, OH, OW).

    kernel_size: K or (KH, KW); stride: pixels between window starts, at least 1.

    Separable: each window's KH rows are reduced first, with KH - 1 elementwise maxima of strided
    slices of whole image rows (N, C, OH, W), then its KW columns, with KW - 1 maxima of strided
    slices of that. No window is copied.

    Recorded as "max_pool2d", saving `kernel_size` and `stride`, keeping the input and keeping the output;
    Module 09's `_max_pool2d_backward` runs it backwards.
    """
    kernel_size = _pair(kernel_size)
    (KH, KW), (H, W) = kernel_size, x.shape[2:]
    if stride < 1:
        raise ValueError(f"max_pool2d: stride={stride}: windows must move by at least one pixel")
    OH, OW = output_size(H, KH, stride, 0), output_size(W, KW, stride, 0)
    if OH < 1 or OW < 1:
        raise ValueError(f"max_pool2d: a {KH}x{KW} window does not fit in a {H}x{W} image")
    ### HINT: rows = x.data[:, :, 0 : stride·OH : stride], copied: row 0 of every window. np.maximum(rows, ..., out=rows) with
    ### HINT: the slice starting at each other window row i. Then the same along the last axis of rows, for each window
    ### HINT: column j (slices j : j + stride·OW : stride): that is `out`
    ### BEGIN SOLUTION
    rows = x.data[:, :, 0 : stride * OH : stride].copy()  # (N, C, OH, W): the maximum of each window's rows
    for i in range(1, KH):
        np.maximum(rows, x.data[:, :, i : i + stride * OH : stride], out=rows)
    out = rows[..., 0 : stride * OW : stride].copy()  # (N, C, OH, OW)
    for j in range(1, KW):
        np.maximum(out, rows[..., j : j + stride * OW : stride], out=out)
    ### END SOLUTION
    return Tensor.from_op(out, "max_pool2d", (x,), ("inputs", "output"), kernel_size=kernel_size, stride=stride)


class MaxPool2D(Module):
    """The maximum of each (KH, KW) window, per channel; stride defaults to the kernel size."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _same_both_ways(stride, "stride") if stride is not None else self.kernel_size[0]

    def _windows(self, x):
        """Each window's values along the first axis: (KH·KW, N, C, OH, OW) (AvgPool2D reduces it)."""
        _check_images(self, x)
        ### HINT: Pooling windows are im2col windows without padding. Put the KH*KW positions of each window first, as
        ### HINT: one axis, so that a reduction over axis 0 pools: the result has shape (KH*KW, N, C, OH, OW).
        ### BEGIN SOLUTION
        windows = im2col(x, self.kernel_size, self.stride)
        N, C, OH, OW, KH, KW = windows.shape
        return windows.permute(4, 5, 0, 1, 2, 3).reshape(KH * KW, N, C, OH, OW)
        ### END SOLUTION

    def forward(self, x):
        _check_images(self, x)
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2D(MaxPool2D):
    """The mean of each (KH, KW) window, per channel; stride defaults to the kernel size."""

    def forward(self, x):
        ### HINT: The mean of each window: a reduction over the first axis of the windows.
        ### BEGIN SOLUTION
        return self._windows(x).mean(axis=0)
        ### END SOLUTION


Conv2d = Conv2D  # PyTorch's spellings of the same layers
MaxPool2d = MaxPool2D
AvgPool2d = AvgPool2D

# %% [markdown]
# **Coming from PyTorch**: `Conv2d`, `MaxPool2d` and `AvgPool2d` are the same classes under
# PyTorch's spelling, with the same keywords (`kernel_size`, `stride`, `padding`; a stride or
# padding may be given as a pair when both numbers agree). `conv.weight` is `conv.weights`, already
# in PyTorch's layout. Layers take batches only: an input that is not `(N, C, H, W)` -- or whose
# channel count is wrong, as a channels-last `(N, H, W, C)` image is -- raises a `ValueError` naming
# the expected and the given shape, and MaxPool2D raises one when its window does not fit in the image
# or its stride is below 1. (PyTorch also accepts a single unbatched `(C, H, W)` image.)

# %% [markdown]
# ### 🧪 Check: the picture's values, and the loops

# %%
grid = Tensor(np.array([[1, 3, 2, 1], [4, 6, 1, 4], [7, 8, 0, 9], [2, 3, 5, 4]], dtype=np.float32)[None, None])
assert MaxPool2D(2)(grid).data[0, 0].tolist() == [[6.0, 4.0], [8.0, 9.0]]
assert AvgPool2D(2)(grid).data[0, 0].tolist() == [[3.5, 2.0], [5.0, 4.5]]
assert MaxPool2D(3, stride=1)(grid).data[0, 0].tolist() == [[8.0, 9.0], [8.0, 9.0]]  # overlapping windows
assert MaxPool2d(kernel_size=2, stride=(2, 2))(grid).shape == (1, 1, 2, 2) and Conv2d is Conv2D
for layer, wrong in [(Conv2D(3, 4, 3), np.zeros((2, 8, 8, 3))), (Conv2D(3, 4, 3), np.zeros((3, 8, 8))),
                     (MaxPool2D(2), np.zeros((8, 8)))]:  # fmt: skip
    try:
        layer(Tensor(wrong.astype(np.float32)))
        raise AssertionError(f"{layer} must refuse an input of shape {wrong.shape}")
    except ValueError as error:
        assert str(wrong.shape) in str(error) and "(N, " in str(error)
try:
    MaxPool2D(3)(Tensor(np.zeros((1, 1, 2, 5), dtype=np.float32)))
    raise AssertionError("MaxPool2D(3) must refuse a 2x5 image")
except ValueError as error:
    assert "a 3x3 window does not fit in a 2x5 image" in str(error)
try:
    MaxPool2D(2, stride=0)(Tensor(np.zeros((1, 1, 4, 4), dtype=np.float32)))
    raise AssertionError("MaxPool2D(2, stride=0) must be refused")
except ValueError as error:
    assert "stride=0" in str(error)
feature_maps = np.random.default_rng(3).standard_normal((4, 3, 9, 9)).astype(np.float32)
for kernel, stride in [(2, 2), (3, 2), (3, 3)]:
    maps = Tensor(feature_maps)
    assert np.array_equal(MaxPool2D(kernel, stride)(maps).data, pool_naive(feature_maps, kernel, stride, np.max))
    assert np.allclose(AvgPool2D(kernel, stride)(maps).data, pool_naive(feature_maps, kernel, stride, np.mean))


def max_pool_last_axis(x, kernel):
    """The same pooling with the window values on the last axis: (N, C, OH, OW, KH·KW).max(axis=-1)."""
    windows = im2col(x, kernel, kernel)
    return windows.reshape(*windows.shape[:4], kernel * kernel).max(axis=-1)


pooled = Tensor(np.random.default_rng(4).standard_normal((32, 16, 32, 32)).astype(np.float32))
naive_s, naive_out = time_it(pool_naive, pooled.data, 2, 2, np.max, repeat=3)
last_s, last_out = time_it(max_pool_last_axis, pooled, 2, repeat=3)
first_s, first_out = time_it(lambda x: MaxPool2D(2)._windows(x).max(axis=0), pooled, repeat=3)
separable_s, separable_out = time_it(MaxPool2D(2), pooled, repeat=10)
for result in (last_out, first_out, separable_out):
    assert np.array_equal(naive_out, result.data)
print(f"MaxPool2D(2) on (32, 16, 32, 32): loop over windows {naive_s * 1e3:.2f} ms, window axis last "
      f"{last_s * 1e3:.2f} ms, window axis first {first_s * 1e3:.2f} ms, separable (MaxPool2D) "
      f"{separable_s * 1e3:.2f} ms")  # fmt: skip

# %% [markdown]
# Pooling has no arithmetic worth the name: every version is limited by moving memory. The loop
# over the 256 window positions is already vectorised over batch and channels, so it is not hopeless;
# the window-last layout is only a few times faster than it, and the window-first layout faster
# again by more than an order of magnitude. The layout of data in memory, not the number of
# operations, decides the speed of such code -- and skipping the copy altogether (the separable
# maxima over strided slices of whole rows) beats the best layout for it.
#
# Why pooling stays on one thread: we ran its strided passes a chunk of images at a time on two workers
# (`map_chunks`), forward and backward, in `make bench`'s harness with BLAS given two threads. Two
# workers took 5.3-7.9 ms a training step, one thread 4.0-5.0 ms. A pooling chunk is a dozen short
# NumPy passes with no arithmetic to speak of, and every pass hands Python's interpreter lock from
# one worker to the other; the two cores also share one memory, which is the limit here. A
# convolution's chunk is one long matrix product and one copy, which is what workers are good for.
#
# ## 5. A small convolutional network
#
# Convolution, ReLU and pooling stacked, then a dense classifier: the classic LeNet shape, for
# 32×32 RGB images (CIFAR-10). `summary` from Module 05 shows how the image shrinks while channels
# grow, and where the parameters are.

# %%
set_seed(5)
cnn = Sequential(
    Conv2D(3, 16, 3, padding=1), ReLU(), MaxPool2D(2),
    Conv2D(16, 32, 3, padding=1), ReLU(), MaxPool2D(2),
    Flatten(), Dense(32 * 8 * 8, 10),
)  # fmt: skip
rows = summary(cnn, (1, 3, 32, 32))
assert rows[-1] == ("total", (1, 10), 448 + 4_640 + 20_490)
seconds, logits = time_it(cnn, Tensor(batch), repeat=3)
assert logits.shape == (32, 10) and logits.requires_grad
print(f"forward pass of 32 images: {seconds * 1e3:.1f} ms")

# %% [markdown]
# ## What you built
#
# `im2col` (the strided window view, recorded for autograd), `Conv2D` as one matrix product over
# the window matrix, `MaxPool2D` and `AvgPool2D`, all on NCHW tensors, checked against the loops of
# the definition and measured. Run `tito module complete 06_spatial` to unlock checkpoint 05.
# Next: **Module 07 · Attention**, where every position of a sequence looks at every other.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint im2col --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `im2col` 2: np.pad with ((0, 0), (0, 0), (p, p), (p, p)); np.lib.stride_tricks.sliding_window_view(data, kernel_size, axis=(2, 3)) has shape (N, C, OH, OW, KH, KW); then slice the OH and OW axes with ::stride.
# - `convolve` 2: out = np.empty((N, OC, OH, OW)); def convolve_chunk(chunk): images = windows[chunk]; product = kernels @ window_matrix(images); if bias is not None: product += bias[:, None]; out[chunk] = product.reshape(OC, len(images), OH, OW).transpose(1, 0, 2, 3); then map_chunks(convolve_chunk, batch_chunks(windows)).
# - `Conv2D.forward` 2: return conv2d(x, self.weights, self.bias, self.stride, self.padding).
# - `MaxPool2D._windows` 2: permute(4, 5, 0, 1, 2, 3), then reshape(KH * KW, N, C, OH, OW).
# - `max_pool2d` 2: rows = x.data[:, :, 0 : stride * OH : stride].copy(); for i in range(1, KH): np.maximum(rows, x.data[:, :, i : i + stride * OH : stride], out=rows); out = rows[..., 0 : stride * OW : stride].copy(); for j in range(1, KW): np.maximum(out, rows[..., j : j + stride * OW : stride], out=out).
# - `AvgPool2D.forward` 2: self._windows(x).mean(axis=0).
