"""TinyGPT: one training step, and generation with and without the KV cache, of tinytorch's TinyGPT
against the same model written in PyTorch.

The configuration is nanoGPT's documented CPU setting for character-level Shakespeare: 4 layers,
4 heads, 128-wide embeddings, a context of 64 characters, batch 12. A step is everything a training
iteration does: zero the gradients, forward, cross-entropy, backward, clip the gradient norm to 1,
AdamW update (and, for tinytorch, the learning-rate scheduler). The PyTorch model is written the
way PyTorch users write it (nanoGPT's layout: fused q/k/v projection, `scaled_dot_product_attention`
with `is_causal=True`, tied output layer) and has exactly the same parameters, which
`copy_weights` maps one to one -- tests/test_tinygpt.py uses that to check both compute the same.

Generation: 256 new tokens after a 64-token prompt, sampled with the same seed, by the same model
with a context of 320 (block_size 64 would make the window slide at once, and a sliding window
leaves a cache nothing to reuse: lesson 16, section 8). Three ways: tinytorch recomputing the whole
context per token, tinytorch with its KV cache, and PyTorch recomputing (the tokens are drawn with
tinytorch's sampler from PyTorch's logits, so all three must produce the same text).

    .venv/bin/python -m bench tinygpt
"""
from __future__ import annotations

import numpy as np

from bench.harness import Measurement, compare, median_times, quick, torch

BATCH_SIZE = 12
SETTINGS = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)


def torch_gpt(config):
    """The PyTorch model equivalent to TinyGPT(config) (same shapes, same parameter count)."""
    nn = torch().nn
    functional = torch().nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = config.n_embd
            self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            batch, length, d = x.shape
            heads = config.n_head
            q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
            q, k, v = (t.view(batch, length, heads, d // heads).transpose(1, 2) for t in (q, k, v))
            y = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.c_proj(y.transpose(1, 2).reshape(batch, length, d))
            return x + self.proj(functional.gelu(self.fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd)

        def forward(self, idx, targets=None):
            x = self.wte(idx) + self.wpe(torch().arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T
            if targets is None:
                return logits, None
            return logits, functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    return GPT()


def copy_weights(model, reference):
    """Copy TinyGPT `model`'s parameters into the PyTorch `reference` (Dense weights are (in, out): transpose)."""
    t = torch()
    state = {}
    state["wte.weight"] = model.token_embedding.weight.data
    state["wpe.weight"] = model.position_embedding.weight.data
    for i, block in enumerate(model.blocks):
        attn = block.attn
        state[f"blocks.{i}.ln_1.weight"], state[f"blocks.{i}.ln_1.bias"] = block.ln_1.gamma.data, block.ln_1.beta.data
        state[f"blocks.{i}.ln_2.weight"], state[f"blocks.{i}.ln_2.bias"] = block.ln_2.gamma.data, block.ln_2.beta.data
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        state[f"blocks.{i}.c_attn.weight"] = np.concatenate([p.weights.data.T for p in projections])
        state[f"blocks.{i}.c_attn.bias"] = np.concatenate([p.bias.data for p in projections])
        first, _, second, _ = block.mlp.layers
        for name, layer in (("c_proj", attn.out_proj), ("fc", first), ("proj", second)):
            state[f"blocks.{i}.{name}.weight"], state[f"blocks.{i}.{name}.bias"] = layer.weights.data.T, layer.bias.data
    state["ln_f.weight"], state["ln_f.bias"] = model.ln_f.gamma.data, model.ln_f.beta.data
    reference.load_state_dict({k: t.tensor(np.ascontiguousarray(v)) for k, v in state.items()})
    return reference


def torch_step(model, optimizer):
    t = torch()

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        t.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    return step


def training_steps():
    """{"tinytorch": one training step, "torch": the same step in PyTorch (when installed)} on the same
    weights and batches, and a dict of extra figures."""
    from bench.train_tinygpt import train_step
    from tinytorch.core.optimizers import AdamW, CosineWithWarmup
    from tinytorch.core.setup import set_seed
    from tinytorch.core.tinygpt import CharTokenizer, GPTConfig, TextWindows, TinyGPT, load_shakespeare

    text = load_shakespeare()
    tokenizer = CharTokenizer().fit(text)
    windows = TextWindows(tokenizer.encode(text[:200_000]), SETTINGS["block_size"])
    batches = [windows.get_batch(np.random.default_rng(i).integers(0, len(windows), BATCH_SIZE)) for i in range(20)]
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **SETTINGS)
    set_seed(0)
    model = TinyGPT(config)
    optimizer = AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    scheduler = CosineWithWarmup(optimizer, warmup_steps=100, total_steps=2000, min_lr=1e-4)
    counter = iter(range(10**9))

    def tinytorch_fn():
        train_step(model, optimizer, scheduler, *batches[next(counter) % len(batches)], grad_clip=1.0)

    torch_fn, extra = None, {}
    t = torch()
    if t is not None:
        reference = copy_weights(model, torch_gpt(config))
        x, y = (t.from_numpy(np.ascontiguousarray(a)) for a in batches[0])
        with t.no_grad():
            extra["initial_loss_gap"] = f"{abs(reference(x, y)[1].item() - model(*batches[0])[1].item()):.1e}"
        torch_optimizer = t.optim.AdamW(reference.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
        pt_step = torch_step(reference, torch_optimizer)
        torch_batches = [tuple(t.from_numpy(np.ascontiguousarray(a)) for a in batch) for batch in batches]
        torch_counter = iter(range(10**9))

        def torch_fn():
            pt_step(*torch_batches[next(torch_counter) % len(torch_batches)])

        extra["torch_threads"] = t.get_num_threads()
    extra["parameters"] = f"{model.num_parameters():,}"
    return {"tinytorch": tinytorch_fn, "torch": torch_fn}, extra


def training_memory_steps():
    """training_steps() without the extra figures: what bench.memory measures in a fresh process."""
    return training_steps()[0]


def training_step_case():
    steps, extra = training_steps()
    name = "training step (4 layers, 4 heads, 128 wide, block 64, batch 12)"
    return [compare(name, steps["tinytorch"], steps["torch"], goal_ratio=2.0, repeat=20, warmup=3, **extra)]


def torch_generate(reference, prompt, max_new_tokens, block_size, seed):
    """PyTorch's generation without a cache: the whole window through the model for every token."""
    from tinytorch.core.tinygpt import next_token_probs, sample_next_token

    t = torch()
    generator = np.random.default_rng(seed)
    ids = np.asarray(prompt)[None]
    with t.no_grad():
        for _ in range(max_new_tokens):
            logits = reference(t.from_numpy(ids[:, -block_size:]))[0][:, -1].numpy()
            ids = np.concatenate([ids, sample_next_token(next_token_probs(logits), generator)[:, None]], axis=1)
    return ids[0]


def generation_cases():
    from tinytorch.core.setup import set_seed
    from tinytorch.core.tinygpt import CharTokenizer, GPTConfig, KVCache, TinyGPT, load_shakespeare

    text = load_shakespeare()
    tokenizer = CharTokenizer().fit(text)
    new_tokens = 8 if quick() else 256
    prompt = tokenizer.encode(text[5000:5064])
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **{**SETTINGS, "block_size": 64 + new_tokens})
    set_seed(0)
    model = TinyGPT(config)
    recompute = model.generate(prompt, new_tokens, seed=1)
    cached = model.generate(prompt, new_tokens, seed=1, use_cache=True)
    assert np.array_equal(recompute, cached), "the KV cache must not change the tokens"
    uncached_fn = lambda: model.generate(prompt, new_tokens, seed=1)  # noqa: E731
    cached_fn = lambda: model.generate(prompt, new_tokens, seed=1, use_cache=True)  # noqa: E731
    torch_fn, extra = None, {}
    if torch() is not None:
        reference = copy_weights(model, torch_gpt(config)).eval()
        torch_fn = lambda: torch_generate(reference, prompt, new_tokens, config.block_size, seed=1)  # noqa: E731
        extra["torch_same_tokens"] = bool(np.array_equal(torch_fn(), cached))
    plain_s, cache_s, torch_s = median_times([uncached_fn, cached_fn, torch_fn or (lambda: None)], repeat=3, warmup=1)
    torch_s = torch_s if torch_fn else None
    per_second = {"tinytorch_recompute_tokens_per_s": round(new_tokens / plain_s, 1),
                  "tinytorch_cache_tokens_per_s": round(new_tokens / cache_s, 1),
                  "torch_recompute_tokens_per_s": round(new_tokens / torch_s, 1) if torch_s else None,
                  "cache_speedup": round(plain_s / cache_s, 2),
                  "cache_bytes": KVCache.for_model(model, batch=1).nbytes}  # fmt: skip
    name = f"generate {new_tokens} tokens after 64 (block {config.block_size})"
    return [
        Measurement(f"{name}, recompute", plain_s, torch_s, None, {**per_second, **extra}),
        Measurement(f"{name}, KV cache", cache_s, torch_s, None, {"cache_speedup_at_least_5x": plain_s / cache_s >= 5}),
    ]


def run():
    return [*training_step_case(), *generation_cases()]
