"""Checkpoint 01 · foundation: I can create tensors and compute with them."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor, ValuesNotKept

RNG = np.random.default_rng(1)


def test_dtypes_follow_pytorch_conventions():
    assert Tensor([1.5, 2.5]).dtype == np.float32
    assert Tensor([[1, 2]]).dtype == np.int64
    assert Tensor(np.ones(2, dtype=np.float64)).dtype == np.float64
    inner = Tensor(np.ones(2, dtype=np.float64))
    assert Tensor(inner).data is inner.data  # a Tensor's own array: same dtype, nothing copied
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert (Tensor([1.0, 2.0]) * 3).dtype == np.float32  # a Python number keeps float32
    with pytest.raises(TypeError):
        Tensor([1, 2], requires_grad=True)


def test_data_is_the_writable_array():
    array = np.zeros((2, 2), dtype=np.float32)
    t = Tensor(array)
    t.data[1, 1] = 7.0
    assert array[1, 1] == 7.0 and t.numpy() is t.data
    t[0, 0] = 3.0
    assert t.data[0, 0] == 3.0


def test_broadcasting_arithmetic_matches_numpy():
    a_np = RNG.standard_normal((4, 3)).astype(np.float32)
    b_np = RNG.standard_normal((3,)).astype(np.float32)
    c_np = RNG.standard_normal((4, 1)).astype(np.float32)
    a, b, c = Tensor(a_np), Tensor(b_np), Tensor(c_np)
    np.testing.assert_allclose((a + b).data, a_np + b_np, rtol=1e-6)
    np.testing.assert_allclose((a - c).data, a_np - c_np, rtol=1e-6)
    np.testing.assert_allclose((a * b / (c + 10)).data, a_np * b_np / (c_np + 10), rtol=1e-6)
    np.testing.assert_allclose((b + c).data, b_np + c_np, rtol=1e-6)  # (3,) + (4,1) -> (4,3)
    assert (b + c).shape == (4, 3)


def test_reflected_operators():
    x = Tensor([1.0, 2.0, 4.0])
    assert (2 - x).data.tolist() == [1.0, 0.0, -2.0]
    assert (8 / x).data.tolist() == [8.0, 4.0, 2.0]
    assert (3 + x).data.tolist() == [4.0, 5.0, 7.0]
    assert (np.float32(2) * x).data.tolist() == [2.0, 4.0, 8.0]
    assert (-x).data.tolist() == [-1.0, -2.0, -4.0]
    assert (x**2).data.tolist() == [1.0, 4.0, 16.0]


def test_matmul_known_values_and_batches():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[5.0, 6.0], [7.0, 8.0]])
    assert (a @ b).data.tolist() == [[19.0, 22.0], [43.0, 50.0]]
    assert a.matmul(b).data.tolist() == [[19.0, 22.0], [43.0, 50.0]]
    batch = RNG.standard_normal((5, 3, 4))
    weights = RNG.standard_normal((4, 2))
    np.testing.assert_allclose((Tensor(batch) @ Tensor(weights)).data, batch @ weights, rtol=1e-12)


def test_reductions_with_axis_and_keepdims():
    x_np = RNG.standard_normal((3, 4, 5))
    x = Tensor(x_np)
    assert abs(x.sum().item() - x_np.sum()) < 1e-9
    np.testing.assert_allclose(x.sum(axis=1).data, x_np.sum(axis=1))
    np.testing.assert_allclose(x.mean(axis=(0, 2)).data, x_np.mean(axis=(0, 2)))
    np.testing.assert_allclose(x.max(axis=-1, keepdims=True).data, x_np.max(axis=-1, keepdims=True))
    assert x.max(axis=-1, keepdims=True).shape == (3, 4, 1)
    assert Tensor([[1.0, 9.0, 3.0]]).argmax(axis=1).data.tolist() == [1]


def test_shapes_reshape_transpose_index():
    x_np = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(x_np)
    assert x.reshape(4, 6).data.tolist() == x_np.reshape(4, 6).tolist()
    assert x.reshape(-1).shape == (24,)
    np.testing.assert_array_equal(x.transpose().data, x_np.transpose(0, 2, 1))
    np.testing.assert_array_equal(x.transpose(0, 1).data, x_np.transpose(1, 0, 2))
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, x_np.transpose(2, 0, 1))
    assert x[1, 2, 3].item() == 23.0
    np.testing.assert_array_equal(x[:, 1:].data, x_np[:, 1:])
    np.testing.assert_array_equal(x[Tensor([1, 1, 0])].data, x_np[[1, 1, 0]])
    assert x.size == 24 and x.ndim == 3 and len(x) == 2


def test_operations_record_the_graph_only_when_needed():
    w = Tensor([[2.0]], requires_grad=True)
    x = Tensor([[3.0]])
    y = (x @ w + 1.0).sum()
    assert y.requires_grad and y._op == "sum"
    add = y._parents[0]
    assert add._op == "add" and add._parents[0]._op == "matmul"
    assert add._parents[0]._parents == (x, w)
    plain = (x * 2).sum()
    assert not plain.requires_grad and plain._op is None and plain._parents == ()
    assert not w.detach().requires_grad and np.shares_memory(w.detach().data, w.data)


def test_a_new_tensor_has_no_gradient_and_an_empty_record():
    w = Tensor([[2.0, 1.0]], requires_grad=True)
    again = Tensor(w)  # a Tensor of a Tensor wraps the same array
    assert type(again.data) is np.ndarray and again.data is w.data
    assert w.grad is None and w._op is None and w._parents == () and w._saved == {}
    assert again.grad is None and again._op is None and not again.requires_grad


def _kept(tensor):
    """Whether the graph kept the values of `tensor` (a recorded result) for a backward rule."""
    try:
        return tensor._node.data is tensor.data
    except ValuesNotKept:
        return False


NEEDS_GRAD = Tensor(np.full((2, 3), 0.5, dtype=np.float32), requires_grad=True)
CONSUMERS = {  # operation applied to an intermediate result r -> (is r kept, is the output kept)
    "r + 1": (lambda r: r + 1.0, False, False), "r - 1": (lambda r: r - 1.0, False, False),
    "r * 2 (a constant)": (lambda r: r * 2.0, False, False),
    "r * w (w needs a gradient)": (lambda r: r * NEEDS_GRAD, True, False),
    "2 * r (reflected)": (lambda r: 2.0 * r, False, False),
    "r / 2": (lambda r: r / 2.0, True, True), "r ** 2": (lambda r: r**2, True, False),
    "r.exp()": (lambda r: r.exp(), False, True), "r.log()": (lambda r: r.log(), True, False),
    "2 ** r": (lambda r: 2.0**r, False, True), "r @ constant": (lambda r: r @ np.ones((3, 2)), False, False),
    "r @ w (w needs a gradient)": (lambda r: r @ NEEDS_GRAD.T, True, False),
    "r.max(axis=1)": (lambda r: r.max(axis=1), True, True), "r.sum()": (lambda r: r.sum(), False, False),
    "r.mean(axis=0)": (lambda r: r.mean(axis=0), False, False), "r.reshape(3, 2)": (lambda r: r.reshape(3, 2), False, False),
    "r.permute(1, 0)": (lambda r: r.permute(1, 0), False, False), "r[0]": (lambda r: r[0], False, False),
    "r.double()": (lambda r: r.double(), False, False), "r.clamp(0, 1)": (lambda r: r.clamp(0, 1), True, False),
}  # fmt: skip


def test_the_graph_keeps_only_the_values_a_backward_rule_reads():
    wrong = {}
    for name, (consume, input_kept, output_kept) in CONSUMERS.items():
        r = Tensor(np.full((2, 3), 2.0, dtype=np.float32), requires_grad=True) + 1.0  # a recorded result
        out = consume(r)
        if (_kept(r), _kept(out)) != (input_kept, output_kept):
            wrong[name] = f"input kept {_kept(r)}, output kept {_kept(out)}"
    assert not wrong, f"kept values differ from what the backward rules read: {wrong}"


def test_keep_is_a_tuple_of_known_words():
    x = Tensor([1.0], requires_grad=True)
    for wrong in ("inputs", ("input",), ("inputs", "everything")):
        with pytest.raises(ValueError):
            Tensor.from_op(x.data * 2, "mul", (x,), wrong)
    assert Tensor.from_op(x.data * 2, "mul", (x,), ("inputs", "output"))._node.data.tolist() == [2.0]


def test_reductions_and_permute_record_what_backward_needs():
    x = Tensor(np.ones((2, 3, 4), dtype=np.float32), requires_grad=True)
    assert x.sum(axis=1, keepdims=True)._saved == {"axis": 1, "keepdims": True}
    assert x.mean()._saved == {"axis": None, "keepdims": False}
    assert x.max(axis=(0, 2))._saved == {"axis": (0, 2), "keepdims": False}
    permuted = x.permute(2, 0, 1)
    assert permuted._op == "permute" and permuted._saved == {"dims": (2, 0, 1)} and permuted.shape == (4, 2, 3)
