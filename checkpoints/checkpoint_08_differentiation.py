"""Checkpoint 08 · differentiation: I can compute the gradient of any computation automatically."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask
from tinytorch.core.autograd import Variable, backward, backward_rule, gradient_check, no_grad, topological_order
from tinytorch.core.layers import Dense
from tinytorch.core.losses import BinaryCrossEntropy, CrossEntropyLoss, MeanSquaredError
from tinytorch.core.networks import MLP, Flatten, Sequential
from tinytorch.core.normalization import BatchNorm1D, BatchNorm2D, LayerNorm
from tinytorch.core.setup import num_threads, set_seed
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def check_layer(layer, x):
    """Finite differences for the input and every parameter of `layer` (in float64)."""
    result = gradient_check(lambda x, *params: layer(x), Tensor(x), *layer.parameters())
    assert result.ok, f"{layer!r}: {result}"


# --- the engine on hand-computed examples -------------------------------------------------------
def test_derivative_of_a_polynomial():
    x = Tensor([2.0], requires_grad=True)
    (x * x + 3 * x).backward()
    assert x.grad.data.tolist() == [7.0]  # d/dx (x² + 3x) = 2x + 3
    z = Tensor([1.5], requires_grad=True)
    (z**3 - 2 / z).backward()
    assert abs(z.grad.item() - (3 * 1.5**2 + 2 / 1.5**2)) < 1e-5


def test_quotient_rule_for_both_operands():
    a = Tensor([3.0, -1.0], requires_grad=True)
    b = Tensor([2.0, 4.0], requires_grad=True)
    (a / b).backward(np.array([1.0, 2.0], dtype=np.float32))
    assert a.grad.data.tolist() == [0.5, 0.5]  # upstream / b
    assert b.grad.data.tolist() == [-0.75, 0.125]  # -upstream * a / b²
    c = Tensor([6.0], requires_grad=True)
    (c / Tensor([4.0])).backward()
    assert c.grad.data.tolist() == [0.25]


def test_matmul_gradients_of_known_matrices():
    A = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    B = Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
    (A @ B).sum().backward()
    assert A.grad.data.tolist() == [[11.0, 15.0], [11.0, 15.0]]  # ones @ Bᵀ: row sums of B
    assert B.grad.data.tolist() == [[4.0, 4.0], [6.0, 6.0]]  # Aᵀ @ ones: column sums of A
    A.zero_grad()
    (A @ Tensor([1.0, -1.0])).backward(np.array([1.0, 2.0], dtype=np.float32))  # matrix @ vector
    assert A.grad.data.tolist() == [[1.0, -1.0], [2.0, -2.0]]


def test_broadcast_bias_gets_column_sums():
    h = Tensor(np.zeros((4, 3), dtype=np.float32), requires_grad=True)
    bias = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    upstream = np.arange(12, dtype=np.float32).reshape(4, 3)
    (h + bias).backward(upstream)
    assert bias.grad.data.tolist() == upstream.sum(axis=0).tolist() == [18.0, 22.0, 26.0]
    assert h.grad.data.tolist() == upstream.tolist() and bias.grad.dtype == np.float32
    column = Tensor(np.zeros((4, 1), dtype=np.float32), requires_grad=True)
    (h * 0 + column).backward(upstream)
    assert column.grad.data.ravel().tolist() == [3.0, 12.0, 21.0, 30.0]  # row sums


def test_indexing_sends_gradients_back_where_they_came_from():
    table = Variable(np.zeros((4, 3)))
    (table[np.array([1, 3, 1])] * Tensor([[1.0, 2.0, 3.0]])).sum().backward()  # row 1 looked up twice
    assert table.grad.data.tolist() == [[0, 0, 0], [2, 4, 6], [0, 0, 0], [1, 2, 3]]
    x = Variable(np.arange(6.0).reshape(2, 3))
    (x[:, 1:] * x[:, 1:]).sum().backward()
    assert x.grad.data.tolist() == [[0.0, 2.0, 4.0], [0.0, 8.0, 10.0]]


def test_gradients_accumulate_until_zero_grad():
    x = Variable([1.0, -2.0])
    loss = (x * x).sum()
    loss.backward()
    loss.backward()
    assert x.grad.data.tolist() == [4.0, -8.0]  # 2 · 2x
    (3 * x).sum().backward()  # a second graph adds to the same .grad
    assert x.grad.data.tolist() == [7.0, -5.0]
    x.zero_grad()
    assert x.grad is None


def test_no_grad_and_detach():
    x = Variable([3.0])
    with no_grad():
        y = x * x
        with no_grad():
            pass
        z = x * 2
    assert not y.requires_grad and not z.requires_grad and y._op is None
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert Tensor.grad_enabled
    (x * x.detach()).backward()  # the detached copy is a constant: d/dx (x · 3) = 3, not 2x
    assert x.grad.data.tolist() == [3.0]
    with pytest.raises(RuntimeError):
        y.backward()


def test_a_chain_of_10000_operations_does_not_recurse():
    x = Variable([1.0])
    y = x
    for _ in range(10_000):
        y = y + 0.5
    y.backward()
    assert x.grad.data.tolist() == [1.0] and y.item() == 5001.0


def test_clear_errors():
    x = Variable([1.0, 2.0])
    with pytest.raises(RuntimeError, match="gradient"):
        (x * 2).backward()  # non-scalar without a gradient
    unknown = Tensor.from_op(x.data * 2, "mystery_op", (x,))
    with pytest.raises(NotImplementedError, match="mystery_op"):
        unknown.sum().backward()


def test_gradient_check_catches_a_wrong_rule():
    @backward_rule("checkpoint_08_triple")
    def wrong(out, grad):
        return (grad * 2,)  # the derivative of 3x is 3

    x = Tensor(rand(3))
    result = gradient_check(lambda t: Tensor.from_op(t.data * 3, "checkpoint_08_triple", (t,)), x)
    assert not result.ok and result.max_error > 0.1
    ok, max_error = gradient_check(lambda t: (t * 3).sum(), x)
    assert ok and max_error < 1e-8


def test_backward_with_an_explicit_gradient():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    backward(x.exp(), np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad.data, [np.e, 0.0, 2 * np.exp(3)], rtol=1e-12)


# --- finite-difference checks of everything written so far --------------------------------------
@pytest.mark.parametrize("activation", [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), LogSoftmax(), Softmax(dim=0)])
def test_activation_gradients(activation):
    assert gradient_check(activation, Tensor(rand(3, 5) * 2)).ok


def test_dense_gradients():
    set_seed(0)
    layer = Dense(4, 3)
    layer.bias.data[:] = [0.1, -0.2, 0.3]
    check_layer(layer, rand(5, 4))
    check_layer(layer, rand(2, 3, 4))  # leading axes kept


def test_mlp_and_sequential_gradients():
    set_seed(1)
    check_layer(MLP([6, 5, 4, 3], activation=Tanh), rand(4, 6))
    check_layer(Sequential(Flatten(), Dense(12, 4), GELU(), Dense(4, 2), Softmax()), rand(3, 3, 2, 2))


def test_conv2d_gradients_with_stride_and_padding():
    set_seed(2)
    conv = Conv2D(2, 3, 3, stride=2, padding=1)
    conv.bias.data[:] = [0.5, -0.5, 0.25]
    check_layer(conv, rand(2, 2, 5, 6))
    check_layer(Conv2D(1, 2, (2, 3)), rand(1, 1, 4, 5))
    check_layer(Conv2D(3, 2, (3, 2), padding=1), rand(2, 3, 5, 4))  # dx as a convolution: stride 1, OC <= C



def test_backward_visits_each_tensor_once_and_only_those_requiring_grad():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(50):  # 2**50 paths from y back to x: only a graph walk that visits each tensor once ends
        y = y + y
    order = topological_order(y)
    assert len(order) == 51 and order[0] is x and order[-1] is y
    y.backward()
    assert x.grad.data.tolist() == [2.0**50]
    c = Tensor([3.0])  # a constant, used twice
    z = c * x + c * x
    assert topological_order(z)[0] is x and all(t.requires_grad for t in topological_order(z))
    x.zero_grad()
    z.backward()
    assert x.grad.data.tolist() == [6.0]


def test_gradients_sum_back_over_stretched_axes_and_vector_operands():
    row = Tensor(np.ones((1, 3)), requires_grad=True)
    (row + Tensor(rand(2, 3))).sum().backward()  # the size-1 axis was stretched to 2
    assert row.grad.shape == (1, 3) and row.grad.data.tolist() == [[2.0, 2.0, 2.0]]
    assert gradient_check(lambda a, v: a @ v, Tensor(rand(3, 4)), Tensor(rand(4, seed=1))).ok  # (3, 4) @ (4,)
    assert gradient_check(lambda v, a: v @ a, Tensor(rand(3, seed=2)), Tensor(rand(3, 4))).ok  # (3,) @ (3, 4)


def test_cross_entropy_of_sequence_logits_is_that_of_their_rows():
    logits, targets = rand(2, 3, 5), np.random.default_rng(3).integers(0, 5, (2, 3))
    sequence = CrossEntropyLoss()(Tensor(logits), targets).item()
    assert abs(sequence - CrossEntropyLoss()(Tensor(logits.reshape(6, 5)), targets.reshape(6)).item()) < 1e-12


@pytest.mark.parametrize("out_channels", [4, 16], ids=["dx-by-convolution", "dx-by-col2im"])
def test_conv2d_batch_gradient_is_the_sum_of_its_images(out_channels):
    """3 images of 8 x 32 x 32 span several of the forward's chunks; one image alone, one chunk."""
    set_seed(3)
    conv = Conv2D(8, out_channels, 3, padding=1)
    images = rand(3, 8, 32, 32, seed=4).astype(np.float32)
    upstream = rand(3, out_channels, 32, 32, seed=5).astype(np.float32)  # the gradient arriving at the output
    weights_grads, input_grads = [], []
    for part in [slice(0, 3), slice(0, 1), slice(1, 2), slice(2, 3)]:
        x = Tensor(images[part], requires_grad=True)
        conv.zero_grad()
        (conv(x) * Tensor(upstream[part])).sum().backward()
        weights_grads.append(conv.weights.grad.data.copy())
        input_grads.append(x.grad.data)
    np.testing.assert_allclose(weights_grads[0], sum(weights_grads[1:]), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(input_grads[0], np.concatenate(input_grads[1:]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("out_channels", [4, 16], ids=["dx-by-convolution", "dx-by-col2im"])
def test_conv2d_gradients_on_two_threads_are_the_serial_ones(out_channels):
    """5 images of 8 x 30 x 30 in float64: a chunk of one image each (518 KB of windows an image)."""
    set_seed(6)
    conv = Conv2D(8, out_channels, 3, padding=1)
    images = rand(5, 8, 30, 30, seed=7)  # float64: BLAS on one or two threads sums in another order, and in
    upstream = Tensor(rand(5, out_channels, 30, 30, seed=8))  # float32 that alone moves the last digits
    gradients = []
    for threads in (2, 1):  # two first: fresh gradient buffers, not the serial run's memory again
        x = Tensor(images, requires_grad=True)
        conv.zero_grad()
        with num_threads(threads):
            (conv(x) * upstream).sum().backward()
        gradients.append((x.grad.data, conv.weights.grad.data.copy(), conv.bias.grad.data.copy()))
    for parallel, serial in zip(*gradients):
        np.testing.assert_allclose(parallel, serial, rtol=1e-5, atol=1e-5)


def test_pooling_gradients():
    x = rand(2, 2, 6, 6, seed=3)  # continuous values: no ties in the max
    check_layer(MaxPool2D(2), x)
    check_layer(MaxPool2D(3, stride=1), x)
    check_layer(MaxPool2D((3, 2), stride=1), x)  # windows taller than wide: offsets (i, j) in that order
    check_layer(AvgPool2D(2), x)
    check_layer(AvgPool2D(3, stride=2), x)
    check_layer(MaxPool2D(2), rand(2, 2, 7, 5, seed=4))  # a row and a column left out of every window
    grid = Tensor(np.array([[1.0, 3.0], [4.0, 2.0]]).reshape(1, 1, 2, 2), requires_grad=True)
    MaxPool2D(2)(grid).sum().backward()
    assert grid.grad.data.ravel().tolist() == [0.0, 0.0, 1.0, 0.0]  # only the maximum gets gradient
    ties = Tensor(np.array([[5.0, 5.0, 0.0], [1.0, 5.0, 2.0]]).reshape(1, 1, 2, 3), requires_grad=True)
    (MaxPool2D(2, stride=1)(ties) * Tensor([[[[3.0, 6.0]]]])).sum().backward()
    # window 1 (columns 0-1) has three winners: a third of 3 each; window 2 (columns 1-2) two: half of 6 each
    np.testing.assert_allclose(ties.grad.data.ravel(), [1.0, 4.0, 0.0, 0.0, 4.0, 0.0])


def test_max_pooling_gradients_share_ties_as_numpy_does():
    x = rand(20, 8, 32, 32, seed=5)
    x[:, :, 0, 0] = x[:, :, 0, 1]  # a tie in every first window
    upstream = rand(20, 8, 16, 16, seed=6)
    images = Tensor(x, requires_grad=True)
    (MaxPool2D(2)(images) * Tensor(upstream)).sum().backward()
    windows = x.reshape(20, 8, 16, 2, 16, 2)  # each 2 x 2 window on axes 3 and 5
    won = windows == windows.max(axis=(3, 5), keepdims=True)
    expected = won * upstream[:, :, :, None, :, None] / won.sum(axis=(3, 5), keepdims=True)
    np.testing.assert_allclose(images.grad.data, expected.reshape(x.shape), rtol=1e-12)


def test_attention_gradients_with_masks():
    attention = ScaledDotProductAttention()
    q, k, v = Tensor(rand(2, 4, 3)), Tensor(rand(2, 6, 3, seed=1)), Tensor(rand(2, 6, 5, seed=2))
    mask = np.random.default_rng(3).random((2, 4, 6)) > 0.5
    mask[..., 0] = True  # every query may attend to at least one key
    assert gradient_check(lambda q, k, v: attention(q, k, v, mask=mask), q, k, v).ok
    x = Tensor(rand(2, 5, 3, seed=4))
    assert gradient_check(lambda x: attention(x, x, x, mask=causal_mask(5)), x).ok
    keys = Variable(rand(1, 6, 3, seed=5))
    attention(Tensor(rand(1, 4, 3)), keys, Tensor(rand(1, 6, 5)), mask=mask[:1]).sum().backward()
    hidden = ~mask[0].any(axis=0)  # keys no query may see get exactly zero gradient
    assert hidden.any() and np.all(keys.grad.data[0, hidden] == 0.0) and np.all(keys.grad.data[0, ~hidden] != 0.0)


def test_multi_head_attention_gradients():
    set_seed(5)
    mha = MultiHeadAttention(6, 2)
    for p in mha.parameters():
        p.data += 0.3 * np.random.default_rng(p.size).standard_normal(p.shape).astype(np.float32)
    x, memory = Tensor(rand(2, 4, 6)), Tensor(rand(2, 3, 6, seed=1))
    assert gradient_check(lambda x, *params: mha(x, x, x, mask=causal_mask(4)), x, *mha.parameters()).ok
    assert gradient_check(lambda x, m: mha(x, m, m), x, memory).ok  # cross-attention
    # causal: the first output position depends on the first input position only
    x = Variable(rand(1, 4, 6))
    upstream = np.zeros((1, 4, 6), dtype=np.float32)
    upstream[0, 0] = 1.0
    backward(mha(x, x, x, mask=causal_mask(4)), upstream)
    assert np.all(x.grad.data[0, 1:] == 0.0) and np.any(x.grad.data[0, 0] != 0.0)


def test_normalization_gradients():
    set_seed(4)
    bn1 = BatchNorm1D(3)
    bn1.gamma.data[:], bn1.beta.data[:] = [1.0, 2.0, 0.5], [0.1, 0.0, -0.1]
    check_layer(bn1, rand(6, 3) * 3 + 1)
    bn2 = BatchNorm2D(2)
    bn2.gamma.data[:] = [1.5, 0.5]
    check_layer(bn2, rand(3, 2, 3, 3))
    ln = LayerNorm(4)
    ln.gamma.data[:], ln.beta.data[:] = [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, -1.0]
    check_layer(ln, rand(2, 3, 4) * 5)


def test_loss_gradients_and_known_values():
    logits = Tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], requires_grad=True)
    loss = CrossEntropyLoss()(logits, np.array([0, 1]))
    softmax = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    assert abs(loss.item() - (-np.log(softmax[0, 0]) - np.log(softmax[1, 1])) / 2) < 1e-6
    loss.backward()
    np.testing.assert_allclose(logits.grad.data, (softmax - np.eye(3)[[0, 1]]) / 2, atol=1e-6)

    z = Tensor([-1e4, -1.0, 0.0, 2.0, 1e4], requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = BinaryCrossEntropy(from_logits=True)(z, y)
        loss.backward()
    assert abs(loss.item() - (1e4 + np.log1p(np.e**-1) + np.log(2) + np.log1p(np.e**-2) + 1e4) / 5) < 1e-2
    sigmoid = 0.5 * (1 + np.tanh(0.5 * z.data.astype(np.float64)))
    np.testing.assert_allclose(z.grad.data, (sigmoid - y) / 5, atol=1e-7)

    pred = Variable([[1.0, 2.0], [3.0, 5.0]])
    MeanSquaredError()(pred, [[1.0, 1.0], [1.0, 1.0]]).backward()
    assert pred.grad.data.tolist() == [[0.0, 0.5], [1.0, 2.0]]  # 2 (pred - target) / 4


def test_probability_cross_entropy_values_ties_and_batched_products():
    # BinaryCrossEntropy on probabilities: the formula, and p clipped to [eps, 1 - eps] (finite at 0 and 1)
    loss = BinaryCrossEntropy()(Tensor([0.9, 0.2]), np.array([1.0, 0.0]))
    assert abs(loss.item() - -(np.log(0.9) + np.log(0.8)) / 2) < 1e-6
    sure = BinaryCrossEntropy(eps=1e-7)(Tensor(np.array([1.0, 0.0])), np.array([0.0, 1.0]))
    assert np.isfinite(sure.item()) and abs(sure.item() + np.log(1e-7)) < 1e-3
    # max: tied maxima share the gradient evenly
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    assert x.grad.data.tolist() == [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]
    x.zero_grad()
    (x.max(axis=1, keepdims=True) * Tensor([[1.0], [4.0]])).sum().backward()
    assert x.grad.data.tolist() == [[0.0, 0.5, 0.5], [2.0, 0.0, 2.0]]
    # a batch of matrices times one matrix (a Dense layer on a sequence): both gradients
    assert gradient_check(lambda a, b: a @ b, Tensor(rand(2, 3, 4)), Tensor(rand(4, 5, seed=1))).ok


def test_loss_finite_differences():
    generator = np.random.default_rng(5)
    assert gradient_check(MeanSquaredError(), Tensor(rand(4, 3)), rand(4, 3, seed=1)).ok
    assert gradient_check(BinaryCrossEntropy(), Tensor(generator.uniform(0.05, 0.95, (6,))), generator.integers(0, 2, 6)).ok
    assert gradient_check(BinaryCrossEntropy(from_logits=True), Tensor(rand(6) * 3), generator.integers(0, 2, 6)).ok
    assert gradient_check(CrossEntropyLoss(), Tensor(rand(5, 4)), generator.integers(0, 4, 5)).ok
    assert gradient_check(CrossEntropyLoss(), Tensor(rand(2, 3, 4)), generator.integers(0, 4, (2, 3))).ok


def test_cross_entropy_is_stable_at_extreme_logits():
    logits = Variable([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = CrossEntropyLoss()(logits, [1, 2])
        loss.backward()
    assert abs(loss.item() - (2e4 + np.log(3)) / 2) < 1e-2
    np.testing.assert_allclose(logits.grad.data, [[0.5, -0.5, 0.0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-6)


def test_a_network_of_these_layers_learns():
    """Gradient descent on a tiny CNN: the loss must fall by 90 % in 60 steps."""
    set_seed(6)
    generator = np.random.default_rng(6)
    images = generator.standard_normal((16, 1, 6, 6)).astype(np.float32)
    labels = (images[:, 0, :3].mean(axis=(1, 2)) > images[:, 0, 3:].mean(axis=(1, 2))).astype(np.int64)
    model = Sequential(Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(36, 2))
    loss_fn = CrossEntropyLoss()
    first = None
    for _ in range(60):
        loss = loss_fn(model(Tensor(images)), labels)
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.2 * p.grad.data
    assert loss.item() < 0.1 * first, (first, loss.item())
