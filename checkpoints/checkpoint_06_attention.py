"""Checkpoint 06 · attention: I can build attention, the mechanism behind transformers."""
import numpy as np
import pytest

from tinytorch.core.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(6)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_attention(q, k, v, additive=0.0):
    weights = softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + additive)
    return weights @ v, weights


def numpy_mha(mha, query, key, value, additive=0.0):
    """Multi-head attention written directly: project, slice each head's columns, attend, concatenate."""

    def project(x, layer):
        return x @ layer.weights.data + layer.bias.data

    q, k, v = project(query, mha.q_proj), project(key, mha.k_proj), project(value, mha.v_proj)
    heads = []
    for h in range(mha.num_heads):
        cols = slice(h * mha.head_dim, (h + 1) * mha.head_dim)
        heads.append(numpy_attention(q[..., cols], k[..., cols], v[..., cols], additive)[0])
    return project(np.concatenate(heads, axis=-1), mha.out_proj)


def test_known_values_by_hand():
    # d = 1, so no scaling; one query, two keys with scores 0 and ln 3: weights 1/4 and 3/4
    q = Tensor([[1.0]])
    k = Tensor([[0.0], [np.log(3.0)]])
    v = Tensor([[10.0, 0.0], [2.0, 4.0]])
    out, weights = ScaledDotProductAttention()(q, k, v, need_weights=True)
    np.testing.assert_allclose(weights.data, [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(out.data, [[0.25 * 10 + 0.75 * 2, 0.75 * 4]], rtol=1e-6)
    np.testing.assert_array_equal(ScaledDotProductAttention()(q, k, v).data, out.data)  # the output alone by default


def test_matches_numpy_with_batch_and_head_axes():
    q, k, v = RNG.standard_normal((2, 3, 5, 8)), RNG.standard_normal((2, 3, 7, 8)), RNG.standard_normal((2, 3, 7, 4))
    out, weights = ScaledDotProductAttention()(Tensor(q), Tensor(k), Tensor(v), need_weights=True)
    expected_out, expected_weights = numpy_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-10)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)


def test_boolean_and_additive_masks():
    q, k, v = (RNG.standard_normal((4, 6)) for _ in range(3))
    allowed = RNG.random((4, 4)) > 0.4
    allowed[:, 0] = True  # every query sees at least one key
    attention = ScaledDotProductAttention()
    out, weights = attention(Tensor(q), Tensor(k), Tensor(v), mask=allowed, need_weights=True)
    assert np.all(weights.data[~allowed] == 0.0)  # exactly zero
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)
    expected_out, expected_weights = numpy_attention(q, k, v, np.where(allowed, 0.0, -np.inf))
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-10)
    additive = np.where(allowed, 0.0, -1e9)
    _, additive_weights = attention(Tensor(q), Tensor(k), Tensor(v), mask=Tensor(additive), need_weights=True)
    np.testing.assert_array_equal(additive_weights.data, weights.data)


def test_fully_masked_rows_stay_finite_and_extreme_scores_are_stable():
    q = Tensor(np.full((2, 3, 4), 100.0, dtype=np.float32))
    k = Tensor(np.array([[[100.0] * 4, [-100.0] * 4, [0.0] * 4]] * 2, dtype=np.float32))
    v = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    mask = np.ones((2, 3, 3), dtype=bool)
    mask[1, 2] = False  # the last query of sequence 1 may see nothing
    with np.errstate(over="raise", invalid="raise"):
        out, weights = ScaledDotProductAttention()(q, k, v, mask=mask, need_weights=True)
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(weights.data))
    assert weights.data[0, 0].tolist() == [1.0, 0.0, 0.0]  # scores 20000, -20000, 0: one-hot, no overflow


def test_causal_mask_values():
    assert causal_mask(4).data.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
    ]
    q = k = v = Tensor(RNG.standard_normal((1, 5, 3)))
    _, weights = ScaledDotProductAttention()(q, k, v, mask=causal_mask(5), need_weights=True)
    assert np.all(np.triu(weights.data[0], k=1) == 0.0) and weights.data[0, 0, 0] == 1.0


def test_multi_head_self_attention_matches_numpy():
    set_seed(0)
    mha = MultiHeadAttention(12, 3)
    assert mha.head_dim == 4 and sum(p.size for p in mha.parameters()) == 4 * (12 * 12 + 12)
    x = RNG.standard_normal((2, 5, 12))
    out = mha(Tensor(x), Tensor(x), Tensor(x))
    assert out.shape == (2, 5, 12) and mha.attention_weights.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(out.data, numpy_mha(mha, x, x, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mha.attention_weights.data.sum(axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        MultiHeadAttention(10, 3)


def test_cross_attention_with_different_lengths():
    set_seed(1)
    mha = MultiHeadAttention(8, 2)
    queries, memory = RNG.standard_normal((3, 4, 8)), RNG.standard_normal((3, 7, 8))
    out = mha(Tensor(queries), Tensor(memory), Tensor(memory))
    assert out.shape == (3, 4, 8) and mha.attention_weights.shape == (3, 2, 4, 7)
    np.testing.assert_allclose(out.data, numpy_mha(mha, queries, memory, memory), rtol=1e-5, atol=1e-6)


def test_causal_self_attention_ignores_the_future():
    set_seed(2)
    mha = MultiHeadAttention(16, 4)
    x = RNG.standard_normal((2, 6, 16)).astype(np.float32)
    changed = x.copy()
    changed[:, 4] += 5.0  # change token 4 of both sequences
    before = mha(Tensor(x), Tensor(x), Tensor(x), mask=causal_mask(6)).data
    after = mha(Tensor(changed), Tensor(changed), Tensor(changed), mask=causal_mask(6)).data
    np.testing.assert_array_equal(after[:, :4], before[:, :4])  # tokens 0..3 cannot see token 4
    assert np.abs(after[:, 4:] - before[:, 4:]).min() > 1e-4
    assert np.all(np.triu(mha.attention_weights.data, k=1) == 0.0)


def test_per_sequence_masks_broadcast_over_heads():
    set_seed(3)
    mha = MultiHeadAttention(8, 4)
    queries, memory = RNG.standard_normal((2, 3, 8)), RNG.standard_normal((2, 5, 8))
    padding = np.ones((2, 3, 5), dtype=bool)
    padding[1, :, 3:] = False  # sequence 1 has only 3 real keys
    out = mha(Tensor(queries), Tensor(memory), Tensor(memory), mask=padding)
    assert np.all(mha.attention_weights.data[1, :, :, 3:] == 0.0)
    assert np.all(mha.attention_weights.data[0] > 0.0)
    additive = np.where(padding, 0.0, -np.inf)  # numpy_mha attends head by head on (B, Lq, Lk)
    np.testing.assert_allclose(out.data, numpy_mha(mha, queries, memory, memory, additive), rtol=1e-5, atol=1e-6)
    # sequence 1 with its padding removed gives the same output
    trimmed = mha(Tensor(queries[1:]), Tensor(memory[1:, :3]), Tensor(memory[1:, :3]))
    np.testing.assert_allclose(out.data[1:], trimmed.data, rtol=1e-6, atol=1e-7)
