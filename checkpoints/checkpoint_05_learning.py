"""Checkpoint 05 · learning: I can see patterns in images with convolution and pooling."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Flatten, Sequential, count_parameters
from tinytorch.core.setup import num_threads, set_seed
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D, batch_chunks, convolve, im2col
from tinytorch.core.tensor import Tensor

STEP = Tensor(np.array([[0, 0, 0, 1, 1, 1]] * 5, dtype=np.float32).reshape(1, 1, 5, 6))  # dark | bright
PREWITT = np.array([[-1.0, 0.0, 1.0]] * 3, dtype=np.float32)  # right minus left, summed over 3 rows


def edge_detector(stride=1, padding=0):
    conv = Conv2D(1, 1, 3, stride=stride, padding=padding, bias=False)
    conv.weights.data[0, 0] = PREWITT
    return conv


def numpy_conv(x, w, b, stride, padding):
    """Direct NumPy reference: pad, then a dot product per output position."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    oh, ow = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = np.empty((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + b.reshape(1, -1, 1, 1)


def test_edge_detector_on_a_step_image():
    # each output column j sees input columns j..j+2: (x[j+2] - x[j]) per row, times 3 rows
    out = edge_detector()(STEP)
    assert out.shape == (1, 1, 3, 4)
    assert out.data[0, 0].tolist() == [[0.0, 3.0, 3.0, 0.0]] * 3


def test_padding_and_stride_by_hand():
    # zero padding: border windows see 2 rows instead of 3, and the zeros outside the bright right
    # half make a false edge (-) at the right border
    padded = edge_detector(padding=1)(STEP).data[0, 0]
    assert padded.shape == (5, 6)
    assert padded[0].tolist() == [0.0, 0.0, 2.0, 2.0, 0.0, -2.0]
    assert padded[2].tolist() == [0.0, 0.0, 3.0, 3.0, 0.0, -3.0]
    assert padded[4].tolist() == padded[0].tolist()
    strided = edge_detector(stride=2, padding=1)(STEP).data[0, 0]
    assert strided.tolist() == [[0.0, 2.0, 0.0], [0.0, 3.0, 0.0], [0.0, 2.0, 0.0]]


def test_channels_are_summed_and_bias_added():
    x = np.stack([np.ones((4, 4)), np.full((4, 4), 2.0)])[None].astype(np.float32)  # (1, 2, 4, 4)
    conv = Conv2D(2, 1, 2)
    conv.weights.data[0] = [np.ones((2, 2)), -np.ones((2, 2))]
    conv.bias.data[:] = 0.5
    assert np.all(conv(Tensor(x)).data == 4 * 1 - 4 * 2 + 0.5)


@pytest.mark.parametrize(
    "channels, kernel, stride, padding, size",
    [
        ((3, 4), 3, 1, 0, (8, 8)),
        ((3, 4), 3, 1, 1, (8, 8)),
        ((2, 5), 3, 2, 1, (9, 7)),
        ((1, 2), (2, 4), 3, 2, (10, 11)),
        ((8, 4), 3, 1, 1, (32, 32)),  # 295 KB of windows an image: the batch spans several chunks
    ],
)
def test_conv2d_matches_numpy_with_stride_and_padding(channels, kernel, stride, padding, size):
    set_seed(0)
    conv = Conv2D(*channels, kernel, stride=stride, padding=padding)
    conv.bias.data[:] = np.linspace(-1, 1, channels[1])
    x = np.random.default_rng(1).standard_normal((3, channels[0], *size)).astype(np.float32)
    expected = numpy_conv(x.astype(np.float64), conv.weights.data, conv.bias.data, stride, padding)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    oh, ow = (size[0] + 2 * padding - kh) // stride + 1, (size[1] + 2 * padding - kw) // stride + 1
    assert expected.shape == (3, channels[1], oh, ow)
    np.testing.assert_allclose(conv(Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_conv2d_on_two_threads_gives_the_serial_numbers():
    set_seed(9)
    conv = Conv2D(6, 5, 3, stride=1, padding=1)
    conv.bias.data[:] = np.linspace(-1, 1, 5)
    x = np.random.default_rng(9).standard_normal((7, 6, 30, 30))  # float64: BLAS's thread count moves no digit
    assert len(batch_chunks(im2col(Tensor(x), 3, 1, 1).data)) == 7  # 389 KB of windows an image: 1 a chunk
    with num_threads(2):
        parallel = conv(Tensor(x)).data  # first: a fresh output buffer, not the serial run's memory again
    with num_threads(1):
        serial = conv(Tensor(x)).data
    np.testing.assert_allclose(parallel, serial, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(parallel, numpy_conv(x.astype(np.float64), conv.weights.data, conv.bias.data, 1, 1),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_an_error_in_one_chunk_of_a_convolution_reaches_the_caller():
    windows = im2col(Tensor(np.ones((7, 6, 30, 30), dtype=np.float32)), 3, 1, 1).data
    with num_threads(2), pytest.raises(ValueError):
        convolve(windows, np.ones((5, 6 * 3 * 3 + 1), dtype=np.float32))  # one column too many for the windows


def test_conv2d_with_its_kaiming_init_keeps_same_padding_shapes():
    set_seed(2)
    conv = Conv2D(3, 16, 3, padding=1)
    assert conv.weights.shape == (16, 3, 3, 3) and conv.bias.shape == (16,)
    assert count_parameters(conv) == 448 and conv.weights.dtype == np.float32
    limit = np.sqrt(6 / 27)
    assert np.abs(conv.weights.data).max() <= limit and conv.weights.data.std() > 0.8 * limit / np.sqrt(3)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 5)).astype(np.float32)
    out = conv(Tensor(x)).data
    assert out.shape == (2, 16, 6, 5) and out.dtype == np.float32  # padding 1 keeps H and W for 3x3
    np.testing.assert_allclose(out, numpy_conv(x.astype(np.float64), conv.weights.data, conv.bias.data, 1, 1),
                               rtol=1e-4, atol=1e-5)  # fmt: skip


def test_convolution_is_translation_equivariant():
    set_seed(3)
    conv = Conv2D(2, 3, 3)
    x = np.random.default_rng(4).standard_normal((1, 2, 10, 10)).astype(np.float32)
    shifted = np.roll(x, shift=(2, 1), axis=(2, 3))
    out, out_shifted = conv(Tensor(x)).data, conv(Tensor(shifted)).data
    np.testing.assert_allclose(out_shifted[:, :, 2:, 1:], out[:, :, :-2, :-1], rtol=1e-5, atol=1e-6)


def test_pooling_known_values():
    grid = Tensor(np.array([[1, 3, 2, 1], [4, 6, 1, 4], [7, 8, 0, 9], [2, 3, 5, 4]], dtype=np.float32)[None, None])
    assert MaxPool2D(2)(grid).data[0, 0].tolist() == [[6.0, 4.0], [8.0, 9.0]]
    assert AvgPool2D(2)(grid).data[0, 0].tolist() == [[3.5, 2.0], [5.0, 4.5]]
    assert MaxPool2D(2, stride=1)(grid).data[0, 0].tolist() == [[6.0, 6.0, 4.0], [8.0, 8.0, 9.0], [8.0, 8.0, 9.0]]
    averages = AvgPool2D(3, stride=1)(grid).data[0, 0]
    np.testing.assert_allclose(averages, [[32 / 9, 34 / 9], [36 / 9, 40 / 9]], rtol=1e-6)
    odd = Tensor(np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7))
    assert MaxPool2D(2)(odd).shape == (2, 3, 2, 3)  # the last row and column do not fill a window
    assert MaxPool2D(2)(odd).data[1, 2, 1, 2] == odd.data[1, 2, 3, 5]


def test_max_pooling_is_one_recorded_operation():
    x = Tensor(np.random.default_rng(5).standard_normal((20, 8, 32, 32)), requires_grad=True)
    pooled = MaxPool2D(2)(x)
    assert np.array_equal(pooled.data, x.data.reshape(20, 8, 16, 2, 16, 2).max(axis=(3, 5)))
    assert pooled._op == "max_pool2d" and pooled._parents == (x,)
    assert pooled._saved == {"kernel_size": (2, 2), "stride": 2}
    assert pooled._node.data is pooled.data  # kept: the rule compares each window with its maximum


def test_im2col_is_recorded_for_autograd():
    x = Tensor(np.ones((1, 2, 5, 5), dtype=np.float32), requires_grad=True)
    windows = im2col(x, 3, stride=2, padding=1)
    assert windows.shape == (1, 2, 3, 3, 3, 3) and windows._op == "im2col" and windows._parents == (x,)
    assert windows._saved == {"input_shape": (1, 2, 5, 5), "kernel_size": (3, 3), "stride": 2, "padding": 1}
    assert windows.data[0, 0, 0, 0].tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert Conv2D(2, 1, 3)(x).requires_grad and MaxPool2D(2)(x).requires_grad


def test_im2col_without_padding_is_a_view_not_a_copy():
    x = np.arange(2 * 3 * 6 * 5, dtype=np.float32).reshape(2, 3, 6, 5)
    windows = im2col(Tensor(x), (3, 2), stride=2).data
    assert windows.shape == (2, 3, 2, 2, 3, 2)
    assert np.array_equal(windows[1, 2, 1, 1], x[1, 2, 2:5, 2:4])
    assert np.shares_memory(windows, x), "at padding 0 im2col must not copy: skip np.pad, slice the view"


def test_small_cnn_end_to_end():
    set_seed(5)
    cnn = Sequential(
        Conv2D(3, 8, 3, padding=1), ReLU(), MaxPool2D(2),
        Conv2D(8, 16, 3, padding=1), ReLU(), AvgPool2D(2),
        Flatten(), Dense(16 * 4 * 4, 10),
    )  # fmt: skip
    assert count_parameters(cnn) == (8 * 27 + 8) + (16 * 72 + 16) + (256 * 10 + 10)
    images = np.random.default_rng(6).standard_normal((4, 3, 16, 16)).astype(np.float32)
    logits = cnn(Tensor(images))
    assert logits.shape == (4, 10) and np.all(np.isfinite(logits.data))
    # the same network computed directly in NumPy
    h = np.maximum(numpy_conv(images, cnn[0].weights.data, cnn[0].bias.data, 1, 1), 0)
    h = h.reshape(4, 8, 8, 2, 8, 2).max(axis=(3, 5))
    h = np.maximum(numpy_conv(h, cnn[3].weights.data, cnn[3].bias.data, 1, 1), 0)
    h = h.reshape(4, 16, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(4, -1)
    np.testing.assert_allclose(logits.data, h @ cnn[7].weights.data + cnn[7].bias.data, rtol=1e-4, atol=1e-5)
