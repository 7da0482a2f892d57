"""TinyGPT against the same model written in PyTorch (bench/bench_tinygpt.py), in float64:
identical weights must give the same logits, loss and gradients of every parameter."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.bench_tinygpt import copy_weights, torch_gpt  # noqa: E402
from tinytorch.core.setup import set_seed  # noqa: E402
from tinytorch.core.tinygpt import GPTConfig, TinyGPT  # noqa: E402


def test_tinygpt_forward_and_backward_match_pytorch():
    set_seed(0)
    config = GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=4, n_embd=32)
    model = TinyGPT(config)
    for p in model.parameters():
        p.data = p.data.astype(np.float64) * 5  # larger weights: every part of the model matters
    reference = copy_weights(model, torch_gpt(config).double())
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, (3, 16)), rng.integers(0, 30, (3, 16))

    logits, loss = model(x, y)
    loss.backward()
    ref_logits, ref_loss = reference(torch.from_numpy(x), torch.from_numpy(y))
    ref_loss.backward()

    np.testing.assert_allclose(logits.data, ref_logits.detach().numpy(), rtol=1e-5, atol=1e-10)
    assert np.isclose(loss.item(), ref_loss.item(), rtol=1e-10)
    grads = {name: p.grad for name, p in reference.named_parameters()}
    for p in model.parameters():  # map the gradients the way the weights were mapped
        p.data, p.grad = p.grad.data, None
    mirrored = copy_weights(model, torch_gpt(config).double())
    for name, value in mirrored.named_parameters():
        np.testing.assert_allclose(value.detach().numpy(), grads[name].numpy(), rtol=1e-5, atol=1e-10, err_msg=name)
