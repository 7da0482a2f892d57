"""Checkpoint 11 · regularization: I can regularise, prune and quantize models."""
import numpy as np
import pytest

from tinytorch.core.autograd import gradient_check, no_grad
from tinytorch.core.compression import (
    MaskedOptimizer,
    QuantizedConv2D,
    QuantizedDense,
    dequantize,
    distillation_loss,
    magnitude_mask,
    model_size_bytes,
    prune_channels,
    prune_model,
    prune_weights_by_magnitude,
    quantize_layer_weights,
    quantize_model,
    sparsity_of,
)
from tinytorch.core.dataloader import DataLoader, digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import MLP, Flatten, Sequential
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.regularization import Dropout, L1Regularization, L2Regularization
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("bits", [8, 6, 4])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("per_channel, axis", [(False, -1), (True, -1), (True, 0)])
def test_quantize_dequantize_error_is_at_most_half_a_step(bits, symmetric, per_channel, axis):
    w = (RNG.standard_normal((24, 40)) * RNG.uniform(0.01, 3.0, 40)).astype(np.float32) + 0.3
    q, scale, zero_point = quantize_layer_weights(w, bits=bits, symmetric=symmetric, per_channel=per_channel, channel_axis=axis)
    assert q.dtype == (np.int8 if symmetric else np.uint8)
    if symmetric:
        assert np.abs(q.astype(int)).max() <= 2 ** (bits - 1) - 1 and np.all(zero_point == 0)
    else:
        assert q.max() <= 2**bits - 1
    if per_channel:
        expected_shape = (1, 40) if axis == -1 else (24, 1)
        assert np.shape(scale) == expected_shape
    restored = dequantize(q, scale, zero_point)
    assert restored.dtype == np.float32
    assert np.all(np.abs(restored - w) <= np.asarray(scale) / 2 * (1 + 1e-6))
    zeros = dequantize(np.broadcast_to(zero_point, np.shape(scale)).astype(q.dtype), scale, zero_point)
    assert np.all(zeros == 0.0)  # 0.0 is represented exactly


def test_quantization_known_values():
    q, scale, zero = quantize_layer_weights(np.array([-1.0, 0.0, 0.5, 0.25]))
    assert q.tolist() == [-127, 0, 64, 32] and abs(scale - 1 / 127) < 1e-9 and zero == 0
    q, scale, zero = quantize_layer_weights(np.array([-1.0, 0.0, 2.0]), symmetric=False)
    assert abs(scale - 3 / 255) < 1e-9 and zero == 85 and q.tolist() == [0, 85, 255]
    q, scale, zero = quantize_layer_weights(np.zeros((3, 2)))
    assert np.all(q == 0) and scale == 1.0  # an all-zero tensor still has a valid scale
    q, scale, zero = quantize_layer_weights(np.zeros(4), symmetric=False)
    assert np.all(q == 0) and scale == 1.0 and zero == 0  # asymmetric too
    q, scale, zero = quantize_layer_weights(np.array([-0.5, 0.0, 0.25]), symmetric=False)  # the range [-0.5, 0.25]
    assert abs(scale - 0.75 / 255) < 1e-9 and zero == 170 and q.tolist() == [0, 170, 255]
    with pytest.raises(ValueError):
        quantize_layer_weights(np.ones(3), bits=9)
    rows = np.array([[-1.0, 2.0], [0.5, 4.0]])  # asymmetric, one range per row: [-1, 2] and [0, 4]
    q, scale, zero = quantize_layer_weights(rows, symmetric=False, per_channel=True, channel_axis=0)
    np.testing.assert_allclose(np.ravel(scale), [3 / 255, 4 / 255], rtol=1e-6)
    assert np.ravel(zero).tolist() == [85, 0] and q.tolist() == [[0, 255], [32, 255]]


def test_model_sizes_exactly_as_computed():
    model = MLP([64, 32, 10])
    assert model_size_bytes(model) == 4 * (64 * 32 + 32 + 32 * 10 + 10) == 9_640
    quantized = quantize_model(model)
    # int8 weights, one float32 scale per output unit, float32 biases
    assert model_size_bytes(quantized) == (64 * 32 + 32 * 10) + 4 * (32 + 10) + 4 * (32 + 10) == 2_704
    assert isinstance(quantized.layers[0], QuantizedDense) and isinstance(model.layers[0], Dense)  # original kept
    cnn = Sequential(Conv2D(1, 4, 3), Flatten(), Dense(4 * 6 * 6, 3, bias=False))
    assert model_size_bytes(quantize_model(cnn)) == (4 * 9 + 144 * 3) + 4 * (4 + 3) + 4 * 4


def test_quantized_dense_error_within_the_derived_bound():
    dense = Dense(50, 20)
    dense.bias.data[:] = RNG.standard_normal(20)
    x = RNG.standard_normal((30, 50)).astype(np.float32)
    with no_grad():
        exact = dense(Tensor(x)).data.astype(np.float64)
    out = QuantizedDense(dense)(Tensor(x)).data
    w = dense.weights.data.astype(np.float64)
    s_w = np.abs(w).max(axis=0) / 127  # per output column
    s_x = np.abs(x).max(axis=1, keepdims=True) / 127  # per row, at run time
    w_hat = np.round(w / s_w) * s_w
    bound = s_w / 2 * np.abs(x).sum(axis=1, keepdims=True) + s_x / 2 * np.abs(w_hat).sum(axis=0)
    assert np.all(np.abs(out - exact) <= bound * (1 + 1e-4) + 1e-6)
    one_row = QuantizedDense(dense)(Tensor(x[3:4])).data
    np.testing.assert_array_equal(one_row, out[3:4])  # a prediction does not depend on the batch
    sequences = QuantizedDense(dense)(Tensor(x.reshape(5, 6, 50))).data  # leading axes are kept
    assert sequences.shape == (5, 6, 20)
    np.testing.assert_array_equal(sequences.reshape(30, 20), out)


def test_quantized_conv_matches_float_conv():
    conv = Conv2D(3, 5, 3, stride=2, padding=1)
    conv.bias.data[:] = RNG.standard_normal(5)
    x = Tensor(RNG.standard_normal((2, 3, 9, 9)).astype(np.float32))
    with no_grad():
        exact = conv(x).data
    out = QuantizedConv2D(conv)(x).data
    assert out.shape == exact.shape == (2, 5, 5, 5)
    assert np.abs(out - exact).max() <= 0.02 * np.abs(exact).max()


def test_quantized_model_accuracy_close_to_float_on_digits():
    set_seed(0)
    X_train, y_train, X_test, y_test = digits_split()
    model = MLP([64, 64, 10])
    optimizer, loss_fn = Adam(model.parameters(), lr=0.01), CrossEntropyLoss()
    for _ in range(10):
        for xb, yb in DataLoader(X_train, y_train, batch_size=64, shuffle=True):
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    with no_grad():
        float_pred = model(Tensor(X_test)).data.argmax(1)
    int8_pred = quantize_model(model)(Tensor(X_test)).data.argmax(1)
    float_acc, int8_acc = np.mean(float_pred == y_test), np.mean(int8_pred == y_test)
    assert float_acc > 0.93
    assert abs(float_acc - int8_acc) <= 0.01 and np.mean(float_pred == int8_pred) >= 0.98


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.333, 0.5, 0.8, 0.99, 1.0])
def test_magnitude_pruning_has_exactly_the_requested_sparsity(sparsity):
    w = RNG.standard_normal((37, 23))
    pruned = prune_weights_by_magnitude(w, sparsity)
    k = round(sparsity * w.size)
    assert np.sum(pruned == 0) == k
    if 0 < k < w.size:  # every pruned magnitude is at most every kept one
        assert np.abs(w[pruned == 0]).max() <= np.abs(w[pruned != 0]).min()
    np.testing.assert_array_equal(pruned[pruned != 0], w[pruned != 0])
    assert np.sum(prune_weights_by_magnitude(np.ones(w.shape), sparsity) == 0) == k  # ties


def test_prune_model_global_and_per_layer_and_masked_fine_tuning():
    set_seed(1)
    model = MLP([20, 30, 5])
    before = {id(p): p.data.copy() for p in model.parameters()}
    masks = prune_model(model, 0.6)
    weights = [p for p in model.parameters() if p.ndim == 2]
    assert sum(int(np.sum(p.data == 0)) for p in weights) == round(0.6 * (20 * 30 + 30 * 5))
    assert abs(sparsity_of(model) - 0.6) < 1e-12
    assert all(np.array_equal(p.data, before[id(p)]) for p in model.parameters() if p.ndim == 1)  # biases kept
    deep = MLP([6, 5, 4, 3])  # three weight matrices ranked together
    prune_model(deep, 0.5)
    assert sum(int(np.sum(p.data == 0)) for p in deep.parameters() if p.ndim == 2) == round(0.5 * (30 + 20 + 12))
    layered = MLP([20, 30, 5])
    prune_model(layered, 0.5, per_layer=True)
    assert [int(np.sum(p.data == 0)) for p in layered.parameters() if p.ndim == 2] == [300, 75]
    optimizer = MaskedOptimizer(SGD(model.parameters(), lr=0.1, momentum=0.9), masks)
    x, y = Tensor(RNG.standard_normal((16, 20)).astype(np.float32)), Tensor(RNG.integers(0, 5, 16))
    for _ in range(3):
        optimizer.zero_grad()
        CrossEntropyLoss()(model(x), y).backward()
        optimizer.step()
    assert abs(sparsity_of(model) - 0.6) < 1e-12  # the zeros stayed zeros
    assert not np.array_equal(weights[0].data, before[id(weights[0])] * masks[0][1])  # the rest trained
    assert optimizer.param_groups[0]["lr"] == 0.1  # the wrapper exposes what schedulers read
    assert np.array_equal(magnitude_mask(np.array([3.0, -1.0, 2.0]), 1 / 3), [1.0, 0.0, 1.0])


def test_structured_channel_pruning():
    w = RNG.standard_normal((6, 8))
    w[:, [1, 4, 6]] *= 0.01  # the three weakest output channels
    pruned, kept = prune_channels(w, 3 / 8)
    assert kept.tolist() == [0, 2, 3, 5, 7]
    assert np.all(pruned[:, [1, 4, 6]] == 0) and np.array_equal(pruned[:, kept], w[:, kept])
    filters = RNG.standard_normal((4, 2, 3, 3))
    filters[2] *= 0.001
    pruned, kept = prune_channels(filters, 0.25, channel_axis=0)
    assert kept.tolist() == [0, 1, 3] and np.all(pruned[2] == 0)


def test_dropout_scaling_and_evaluation_identity():
    set_seed(3)
    drop = Dropout(0.3)
    x = Tensor(np.full((200, 500), 2.0, dtype=np.float32))
    out = drop(x).data
    assert set(np.unique(out).tolist()) == {0.0, np.float32(2.0 / 0.7)}
    assert abs(np.mean(out == 0) - 0.3) < 0.01  # 100,000 draws: the standard error is 0.0015
    set_seed(3)
    assert np.array_equal(Dropout(0.3)(x).data, out)  # the mask comes from rng()
    drop.eval()
    assert drop(x) is x
    assert Dropout(0.0)(x) is x
    w = Tensor(np.linspace(1, 2, 8), requires_grad=True)
    kept = Dropout(0.5)(w)
    (kept * kept).sum().backward()
    expected = np.where(kept.data != 0, 2 * kept.data * 2.0, 0.0)  # d(out²)/dw = 2·out·(1/(1-p))
    np.testing.assert_allclose(w.grad.data, expected)
    model = Sequential(Dense(4, 4), Dropout(0.5))
    model.eval()
    assert model.layers[1].training is False
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_l1_l2_penalty_values_and_gradients():
    model = MLP([2, 2, 1])
    model.layers[0].weights.data[:] = [[1.0, -2.0], [0.5, 0.0]]
    model.layers[0].bias.data[:] = [10.0, 10.0]  # biases are not penalised
    model.layers[2].weights.data[:] = [[-3.0], [1.0]]
    l2, l1 = L2Regularization(0.01)(model), L1Regularization(0.1)(model)
    assert isinstance(l2, Tensor) and abs(l2.item() - 0.01 * (1 + 4 + 0.25 + 0 + 9 + 1)) < 1e-7
    assert abs(l1.item() - 0.1 * (1 + 2 + 0.5 + 0 + 3 + 1)) < 1e-7
    (l1 + l2).backward()
    w = model.layers[0].weights
    np.testing.assert_allclose(w.grad.data, 0.1 * np.sign(w.data) + 0.01 * 2 * w.data, rtol=1e-6)
    assert model.layers[0].bias.grad is None
    p = Tensor(RNG.standard_normal((3, 4)) + 0.5, requires_grad=True)
    assert gradient_check(lambda t: L1Regularization(0.7)([t]) + L2Regularization(0.2)([t]), p).ok
    vector = Tensor(np.array([1.0, -2.0]), requires_grad=True)  # a list: used as given, 1-D too
    assert abs(L2Regularization(1.0)([vector]).item() - 5.0) < 1e-12


def test_distillation_loss_value_and_gradient():
    student = RNG.standard_normal((6, 5))
    teacher = RNG.standard_normal((6, 5)) * 3
    targets = RNG.integers(0, 5, 6)
    T, alpha = 2.5, 0.6

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(teacher / T), softmax(student / T)
    kl = np.sum(p * (np.log(p) - np.log(q))) / 6
    ce = -np.mean(np.log(softmax(student))[np.arange(6), targets])
    s = Tensor(student.copy(), requires_grad=True)
    loss = distillation_loss(s, teacher, targets, temperature=T, alpha=alpha)
    assert abs(loss.item() - (alpha * T**2 * kl + (1 - alpha) * ce)) < 1e-10
    soft = Tensor(student.copy(), requires_grad=True)
    distillation_loss(soft, Tensor(teacher), temperature=T).backward()
    np.testing.assert_allclose(soft.grad.data, T * (q - p) / 6, rtol=1e-9, atol=1e-12)  # d(T²·KL)/ds
    assert abs(distillation_loss(Tensor(teacher), teacher).item()) < 1e-12
    check = gradient_check(lambda t: distillation_loss(t, teacher, targets, T, alpha), Tensor(student.copy()))
    assert check.ok
    confident = np.array([[3000.0, 0.0, -3000.0], [0.0, 6000.0, 3000.0]])  # a teacher sure of itself: stay finite
    with np.errstate(over="raise", invalid="raise"):
        value = distillation_loss(Tensor(np.zeros((2, 3))), confident, temperature=2.0).item()
    assert abs(value - 4 * np.log(3)) < 1e-9  # T² · KL(one-hot ‖ uniform) = 2² · log 3 for each row
