"""TinyGPT beyond checkpoint 15: the training script (checkpoint save and exact resume), the
tokenizer on any Unicode text, and dropout in training against evaluation."""
import json

import numpy as np
import pytest

from bench import train_tinygpt
from tinytorch.core.autograd import no_grad
from tinytorch.core.setup import set_seed
from tinytorch.core.tinygpt import CharTokenizer, GPTConfig, TinyGPT

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4",
        "--warmup", "3", "--eval-interval", "5", "--eval-iters", "2", "--final-eval-iters", "3",
        "--sample-tokens", "20", "--dropout", "0.1", "--quiet"]  # fmt: skip


def saved_state(folder):
    with np.load(folder / train_tinygpt.CHECKPOINT) as archive:
        return {name: archive[name] for name in archive.files if name != "meta"}


class Interrupted(Exception):
    pass


def test_resuming_a_checkpoint_continues_exactly(tmp_path, monkeypatch):
    straight = train_tinygpt.train(train_tinygpt.parse_args(["--iters", "12", "--out", str(tmp_path / "a"), *TINY]))

    step, calls = train_tinygpt.train_step, []

    def crash_after_seven(*args):
        calls.append(1)
        if len(calls) > 7:  # the checkpoint of iteration 5 is on disk; iterations 5 and 6 are lost
            raise Interrupted
        return step(*args)

    monkeypatch.setattr(train_tinygpt, "train_step", crash_after_seven)
    with pytest.raises(Interrupted):
        train_tinygpt.train(train_tinygpt.parse_args(["--iters", "12", "--out", str(tmp_path / "b"), *TINY]))
    monkeypatch.setattr(train_tinygpt, "train_step", step)
    resumed = train_tinygpt.train(
        train_tinygpt.parse_args(["--iters", "12", "--out", str(tmp_path / "b"), "--resume", *TINY])
    )

    a, b = saved_state(tmp_path / "a"), saved_state(tmp_path / "b")
    assert a.keys() == b.keys() and any(k.endswith("/exp_avg_sq") for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in resumed["history"]]
    assert [h["iteration"] for h in strip] == [0, 5, 10, 12]
    assert straight["sample"] == resumed["sample"]


def test_the_script_writes_a_report_and_a_vocabulary(tmp_path):
    report = train_tinygpt.main(["--iters", "6", "--out", str(tmp_path), *TINY])
    assert report == 0
    saved = json.loads((tmp_path / train_tinygpt.REPORT).read_text())
    assert saved["iterations"] == 6 and saved["config"]["n_embd"] == 16 and saved["history"][-1]["iteration"] == 6
    assert saved["val_loss"] < np.log(80) + 0.2 and len(saved["sample"]) == 21
    tokenizer = CharTokenizer.load(tmp_path / train_tinygpt.VOCAB)
    assert tokenizer.vocab_size == 80 and tokenizer.decode(tokenizer.encode(saved["sample"])) == saved["sample"]


def test_tokenizer_handles_any_unicode_text(tmp_path):
    text = "naïve café — 東京 🙂\nok"
    tokenizer = CharTokenizer().fit(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    tokenizer.save(tmp_path / "vocab.json")
    assert CharTokenizer.load(tmp_path / "vocab.json").encode("🙂東").tolist() == tokenizer.encode("🙂東").tolist()
    with pytest.raises(ValueError, match="'x'"):
        tokenizer.encode("x")
    with pytest.raises(ValueError):
        tokenizer.decode([tokenizer.vocab_size])
    with pytest.raises(ValueError):
        CharTokenizer(["a", "a"])


def test_dropout_is_active_in_training_only():
    set_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.5))
    x = np.arange(8).reshape(1, 8) % 10
    first, second = model(x)[0].data, model(x)[0].data
    assert not np.allclose(first, second)  # a new dropout mask every call
    model.eval()
    with no_grad():
        assert np.array_equal(model(x)[0].data, model(x)[0].data)
    model.train()
    model.generate(x[0], 3, seed=0)
    assert model.training and all(block.training for block in model.blocks)
