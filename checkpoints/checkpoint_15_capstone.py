"""Checkpoint 15 · capstone: I can build a language model from my own framework.

The same components serve vision and language: a CNN on the digits and a TinyGPT on Shakespeare
train with the same optimizer class and the same Trainer; the GPT's gradients are exact, its
attention never looks ahead, its sampling is reproducible and obeys temperature and top-k, and its
KV cache gives exactly the tokens of recomputing the whole context.
"""
import itertools
import math

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradient_check, no_grad
from tinytorch.core.dataloader import DataLoader, digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Flatten, Sequential
from tinytorch.core.optimizers import AdamW, CosineWithWarmup
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tinygpt import (
    CharTokenizer,
    GPTConfig,
    KVCache,
    TextWindows,
    TinyGPT,
    load_shakespeare,
    next_token_probs,
    sample_next_token,
    shakespeare_split,
)
from tinytorch.core.training import Trainer


@pytest.fixture(scope="module")
def corpus():
    """(tokenizer, train ids, validation ids) of the shipped text."""
    text = load_shakespeare()
    train_text, val_text = shakespeare_split()
    tokenizer = CharTokenizer().fit(text)
    return tokenizer, tokenizer.encode(train_text), tokenizer.encode(val_text)


def tiny_gpt(vocab_size, seed=0, **settings):
    set_seed(seed)
    return TinyGPT(GPTConfig(vocab_size, **{"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16, **settings}))


def next_token_loss(output, targets):
    """The Trainer's loss for TinyGPT, whose forward returns (logits, loss)."""
    return CrossEntropyLoss()(output[0], targets)


def entropy(p):
    return float(-(p * np.log(np.where(p > 0, p, 1.0))).sum())


def test_the_shakespeare_corpus_ships_with_a_fixed_split(corpus):
    text = load_shakespeare()
    train_text, val_text = shakespeare_split()
    assert len(text) == 3_080_323 and text.startswith("ANTONY AND CLEOPATRA\n")
    assert "To be, or not to be" in train_text and "Gutenberg" not in text
    assert train_text + val_text == text and len(train_text) == int(0.9 * len(text))
    tokenizer, train_ids, val_ids = corpus
    assert tokenizer.vocab_size == 80 and tokenizer.chars[:3] == ["\n", " ", "!"]
    assert len(train_ids) == len(train_text) and len(val_ids) == len(val_text)


def test_tokenizer_round_trip_unknown_characters_and_saved_vocabulary(corpus, tmp_path):
    tokenizer = CharTokenizer().fit("hello world")
    assert tokenizer.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert tokenizer.encode("hello").tolist() == [3, 2, 4, 4, 5]
    assert tokenizer.decode([7, 5, 6, 4, 1]) == "world"
    with pytest.raises(ValueError, match="'z'"):  # only the unknown character is named, not " " (id 0)
        tokenizer.encode("he z")
    shakespeare, train_ids, _ = corpus
    shakespeare.save(tmp_path / "vocab.json")
    reloaded = CharTokenizer.load(tmp_path / "vocab.json")
    passage = load_shakespeare()[100_000:101_000]
    assert np.array_equal(reloaded.encode(passage), train_ids[100_000:101_000])
    assert reloaded.decode(train_ids[100_000:101_000]) == passage


def test_weight_tying_and_the_parameter_count(corpus):
    tokenizer, train_ids, _ = corpus
    V, d = tokenizer.vocab_size, 16
    model = tiny_gpt(V)
    per_block = 2 * 2 * d + 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert model.num_parameters() == V * d + 16 * d + per_block + 2 * d
    assert sum(p is model.token_embedding.weight for p in model.parameters()) == 1
    x = train_ids[:32].reshape(2, 16)
    logits, loss = model(x, train_ids[1:33].reshape(2, 16))
    assert logits.shape == (2, 16, V)
    assert abs(loss.item() - math.log(V)) < 0.1  # an untrained model guesses about uniformly
    hidden = model.ln_f(model.blocks(model.token_embedding(x) + model.position_embedding(x)))
    np.testing.assert_allclose(logits.data, hidden.data @ model.token_embedding.weight.data.T, rtol=1e-5, atol=1e-6)


def test_gradients_of_the_whole_gpt_match_finite_differences():
    model = tiny_gpt(vocab_size=7, block_size=4, n_embd=8)
    params = model.parameters()
    x = np.array([[1, 2, 3, 1], [0, 6, 6, 5]])
    y = np.array([[2, 3, 1, 4], [6, 6, 5, 0]])
    check = gradient_check(lambda *_: model(x, y)[1], *params)
    assert check.ok, f"largest gradient error {check.max_error:.2e}"
    assert all(p.dtype == np.float32 for p in params)  # gradient_check restores the parameters


def test_changing_a_future_token_never_changes_an_earlier_position(corpus):
    tokenizer, train_ids, _ = corpus
    model = tiny_gpt(tokenizer.vocab_size, n_layer=2)
    x = train_ids[:48].reshape(3, 16)
    with no_grad():
        reference = model(x)[0].data
        for t in (15, 9, 3):
            changed = x.copy()
            changed[:, t] = (changed[:, t] + 7) % tokenizer.vocab_size
            logits = model(changed)[0].data
            assert np.array_equal(logits[:, :t], reference[:, :t]), f"a position before {t} saw token {t}"
            assert not np.allclose(logits[:, t], reference[:, t])


def test_a_cnn_and_a_gpt_train_with_the_same_optimizer_and_trainer(corpus):
    # Vision: a small CNN on the digits.
    X_train, y_train, X_test, y_test = digits_split(images=True)
    set_seed(0)
    cnn = Sequential(Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(8 * 4 * 4, 10))
    vision = Trainer(cnn, AdamW(cnn.parameters(), lr=0.01), CrossEntropyLoss())
    vision.fit(DataLoader(X_train, y_train, batch_size=32, shuffle=True, seed=0), epochs=6, progress=False)
    accuracy = vision.evaluate(DataLoader(X_test, y_test, batch_size=512))["accuracy"]
    assert accuracy > 0.93

    # Language: a TinyGPT on windows of the Shakespeare text, validated on the held-out tail.
    tokenizer, train_ids, val_ids = corpus
    gpt = tiny_gpt(tokenizer.vocab_size, block_size=32, n_head=4, n_embd=48)
    steps = 200
    optimizer = AdamW(gpt.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.0)
    schedule = CosineWithWarmup(optimizer, warmup_steps=20, total_steps=steps, min_lr=1e-3)
    language = Trainer(gpt, optimizer, next_token_loss, metrics=[], scheduler=schedule)
    batches = DataLoader(TextWindows(train_ids[:1_000_000], 32), batch_size=32, shuffle=True, seed=0)
    val_batches = list(itertools.islice(DataLoader(TextWindows(val_ids, 32), batch_size=64, shuffle=True, seed=1), 6))
    before = language.evaluate(val_batches)["loss"]
    language.fit(list(itertools.islice(batches, steps)), epochs=1, progress=False)
    after = language.evaluate(val_batches)["loss"]
    uniform = math.log(tokenizer.vocab_size)
    assert abs(before - uniform) < 0.1
    assert after < 0.65 * uniform, f"validation loss {after:.3f} after {steps} steps, ln V = {uniform:.3f}"

    assert type(vision) is type(language) is Trainer
    assert type(vision.optimizer) is type(language.optimizer) is AdamW


def test_sampling_is_reproducible_and_obeys_top_k_and_temperature(corpus):
    tokenizer, train_ids, _ = corpus
    model = tiny_gpt(tokenizer.vocab_size)
    model.token_embedding.weight.data *= 50  # spread the logits so that sampling choices differ
    prompt = tokenizer.encode("KING.\n")
    first = model.generate(prompt, 30, seed=11)
    assert np.array_equal(first, model.generate(prompt, 30, seed=11))
    assert np.array_equal(first[: len(prompt)], prompt) and len(first) == len(prompt) + 30
    assert not np.array_equal(first, model.generate(prompt, 30, seed=12))
    set_seed(5)
    global_draw = model.generate(prompt, 30)
    set_seed(5)
    assert np.array_equal(global_draw, model.generate(prompt, 30))

    # greedy by hand: append the argmax of the last position's logits, one token at a time
    greedy = prompt.copy()
    with no_grad():
        for _ in range(20):
            greedy = np.append(greedy, model(greedy[None, -16:])[0].data[0, -1].argmax())
    assert np.array_equal(model.generate(prompt, 20, top_k=1, seed=3), greedy)
    assert np.array_equal(model.generate(prompt, 20, temperature=0), greedy)
    assert np.array_equal(model.generate(prompt, 20, temperature=1e-6, seed=4), greedy)
    assert model.generate(np.stack([prompt, prompt]), 5, seed=0).shape == (2, len(prompt) + 5)

    with no_grad():
        logits = model(prompt[None])[0].data[0, -1]
    probs = next_token_probs(logits, top_k=5)
    assert np.count_nonzero(probs) == 5 and np.isclose(probs.sum(), 1.0)
    top5 = np.argsort(logits)[-5:]
    kept = np.exp(logits[top5].astype(np.float64))
    np.testing.assert_allclose(probs[top5], kept / kept.sum(), rtol=1e-9)
    entropies = [entropy(next_token_probs(logits, t)) for t in (0.01, 0.5, 1.0, 2.0, 10.0)]
    assert all(a < b for a, b in zip(entropies, entropies[1:])) and entropies[0] < 0.01
    assert entropies[-1] > 0.9 * math.log(tokenizer.vocab_size)
    assert next_token_probs(logits, temperature=1e-6).max() == 1.0
    with pytest.raises(ValueError):
        next_token_probs(logits, top_k=0)

    draws = sample_next_token(np.tile(next_token_probs(logits), (50_000, 1)), np.random.default_rng(0))
    frequencies = np.bincount(draws, minlength=tokenizer.vocab_size) / 50_000
    assert np.abs(frequencies - next_token_probs(logits)).max() < 0.01


def test_batches_distributions_and_draws_follow_their_definitions_on_every_axis():
    ids = np.arange(100) * 7 % 101  # distinct ids: a window read from the wrong place shows
    xs, ys = TextWindows(ids, block_size=5).get_batch(np.array([0, 37, 94]))
    windows = np.stack([ids[0:6], ids[37:43], ids[94:100]])  # example i is (ids[i:i+T], ids[i+1:i+T+1])
    assert np.array_equal(xs, windows[:, :-1]) and np.array_equal(ys, windows[:, 1:])

    # (batch, time, vocab) logits: each row's distribution is that of the row alone
    logits = np.random.default_rng(3).normal(size=(2, 3, 7)) * 3
    probs = next_token_probs(logits, temperature=0.8, top_k=4)
    assert probs.shape == (2, 3, 7) and (np.count_nonzero(probs, axis=-1) == 4).all()
    for row in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(probs[row], next_token_probs(logits[row], temperature=0.8, top_k=4), rtol=1e-12)
    greedy = next_token_probs(logits, temperature=0)  # one-hot at each row's largest logit
    assert np.array_equal(greedy, np.arange(7) == logits.argmax(axis=-1)[..., None])

    class LastDraw:  # the largest u a generator can return
        def random(self, shape):
            return np.full(shape, 1 - 2**-53)

    tenths = np.full(10, 0.1)  # their running sum ends a hair below 1: 0.9999999999999999
    assert sample_next_token(tenths, LastDraw()) == 9, "u scaled by the total stays below it: never index 10"

    # one draw per row, each from its own distribution: fewer positions (2) than tokens (7)
    rows = np.broadcast_to(probs[0, :2], (50_000, 2, 7))
    draws = sample_next_token(rows, np.random.default_rng(1))
    assert draws.shape == (50_000, 2)
    for t in range(2):
        frequencies = np.bincount(draws[:, t], minlength=7) / 50_000
        assert np.abs(frequencies - probs[0, t]).max() < 0.01


def test_generation_crops_the_context_and_rejects_overlong_input(corpus):
    tokenizer, train_ids, _ = corpus
    model = tiny_gpt(tokenizer.vocab_size)
    long_prompt = train_ids[:40]  # longer than block_size = 16
    out = model.generate(long_prompt, 3, temperature=0)
    with no_grad():
        expected = model(long_prompt[None, -16:])[0].data[0, -1].argmax()
    assert out[40] == expected
    with pytest.raises(ValueError, match="block_size"):
        model(train_ids[:17][None])


def test_the_kv_cache_gives_exactly_the_tokens_of_recomputing(corpus):
    tokenizer, train_ids, _ = corpus
    model = tiny_gpt(tokenizer.vocab_size, n_layer=2)
    model.token_embedding.weight.data *= 50  # spread the logits so that a wrong cache changes the samples
    prompt = train_ids[:5]

    cache = KVCache.for_model(model, batch=1)
    assert cache.keys.shape == (2, 1, 2, 16, 8) and cache.length == 0
    with no_grad():
        step_by_step = [model.forward_cached(prompt[None, :3], cache)]
        step_by_step += [model.forward_cached(prompt[None, t : t + 1], cache) for t in (3, 4)]
        recomputed = [model(prompt[None, : t + 1])[0].data[:, -1] for t in (2, 3, 4)]
    assert cache.length == 5
    for cached, full in zip(step_by_step, recomputed):
        np.testing.assert_allclose(cached, full, rtol=1e-4, atol=1e-5)

    for settings in (dict(seed=3), dict(seed=4, top_k=3), dict(temperature=0)):
        within_block = model.generate(prompt, 11, use_cache=True, **settings)  # 5 + 11 = block_size 16
        assert np.array_equal(within_block, model.generate(prompt, 11, **settings)), settings
        past_block = model.generate(prompt, 30, use_cache=True, **settings)  # the window slides: the cache restarts
        assert np.array_equal(past_block, model.generate(prompt, 30, **settings)), settings
    batch = np.stack([prompt, train_ids[100:105]])
    assert np.array_equal(model.generate(batch, 8, seed=5, use_cache=True), model.generate(batch, 8, seed=5))
    assert model.training, "generate restores training mode, with the cache too"
