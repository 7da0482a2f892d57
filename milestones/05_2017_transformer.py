"""2017 · Attention is all you need (Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin)

Recurrent networks read a sentence one word after another. The Transformer drops the recurrence:
every position looks at every earlier position at once, through attention, and learns which ones
matter. Stacked with small MLPs, layer norm and residual connections, this became GPT. Here your
TinyGPT (your embeddings, attention, layer norm and autograd) learns to write Shakespeare one
character at a time from the shipped plays. A model that knows nothing scores ln V on the
validation text (V characters, all equally likely); we ask for a cross-entropy of 2.0 nats or
less, then let it write, and look at where its attention goes.
"""
import itertools
import math
import sys

import numpy as np

import kit
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DataLoader
from tinytorch.core.optimizers import AdamW, CosineWithWarmup, clip_grad_norm
from tinytorch.core.setup import set_seed
from tinytorch.core.tinygpt import CharTokenizer, GPTConfig, TextWindows, TinyGPT, load_shakespeare, shakespeare_split

# (layers, heads, width, context, batch, iterations, peak learning rate)
SIZES = {"quick": (1, 2, 32, 32, 16, 150, 3e-3), "full": (2, 4, 64, 48, 16, 2000, 3e-3)}
PROMPT = "ROMEO:\n"


def batches(dataset, batch_size, seed):
    """An endless stream of shuffled batches (each pass over the data reshuffled with the next seed)."""
    for epoch in itertools.count():
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed + epoch)


def validation_loss(model, fixed_batches):
    model.eval()
    with no_grad():
        losses = [model(x, y)[1].item() for x, y in fixed_batches]
    model.train()
    return float(np.mean(losses))


def train(run, model, train_set, val_batches, iterations, batch_size, lr):
    """AdamW with warm-up and a cosine decay, gradients clipped to norm 1; returns the loss history."""
    optimizer = AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    schedule = CosineWithWarmup(optimizer, warmup_steps=iterations // 20, total_steps=iterations, min_lr=lr / 10)
    history = {"iteration": [], "train": [], "val": []}
    every = max(1, iterations // 10)
    stream, recent = batches(train_set, batch_size, seed=2017), []
    for iteration in range(1, iterations + 1):
        x, y = next(stream)
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        recent.append(loss.item())
        if iteration % every == 0:
            history["iteration"].append(iteration)
            history["train"].append(float(np.mean(recent)))
            history["val"].append(validation_loss(model, val_batches))
            recent = []
            run.say(f"iteration {iteration:5d}: train loss {history['train'][-1]:.3f}, validation loss {history['val'][-1]:.3f}")
    return history


def attention_map(model, tokenizer, text):
    """The first block's attention weights on `text`, averaged over heads: (T, T), row = query position."""
    model.eval()
    with no_grad():
        model(tokenizer.encode(text)[None])
    return model.blocks[0].attn.attention_weights.data[0].mean(axis=0)


def draw(run, history, weights, text):
    series = {"training loss": (history["iteration"], history["train"]), "validation loss": (history["iteration"], history["val"])}
    run.plot(kit.line_chart(series, "cross-entropy (nats per character)", "iteration"))
    run.say(f"attention of the first block on {text!r} (row: each character; column: the earlier ones it reads; "
            "red = much attention):", kit.heatmap(weights, 0.0, float(weights.max())))  # fmt: skip

    def picture(fig):
        left, right = fig.subplots(1, 2)
        for label, (xs, ys) in series.items():
            left.plot(xs, ys, label=label)
        left.axhline(2.0, color="grey", linestyle="--", label="goal 2.0")
        left.set(xlabel="iteration", ylabel="nats per character", title="TinyGPT on Shakespeare")
        left.legend()
        right.imshow(weights, cmap="Reds")
        labels = [repr(c)[1:-1] for c in text]
        right.set_xticks(range(len(text)), labels, fontsize=6)
        right.set_yticks(range(len(text)), labels, fontsize=6)
        right.set_title("attention, first block")

    run.png(picture)


def body(run):
    layers, heads, width, context, batch_size, iterations, lr = SIZES["quick" if run.quick else "full"]
    text = load_shakespeare()
    train_text, val_text = shakespeare_split()
    tokenizer = CharTokenizer().fit(text)
    set_seed(2017)
    model = TinyGPT(GPTConfig(tokenizer.vocab_size, context, layers, heads, width))
    train_set = TextWindows(tokenizer.encode(train_text), context)
    val_set = TextWindows(tokenizer.encode(val_text), context)
    val_batches = list(itertools.islice(DataLoader(val_set, batch_size=32, shuffle=True, seed=1), run.size(8, 40)))
    run.say(f"TinyGPT: {layers} layer(s), {heads} heads, width {width}, context {context}: "
            f"{model.num_parameters():,} parameters; {iterations} iterations of {batch_size} windows")  # fmt: skip
    history = train(run, model, train_set, val_batches, iterations, batch_size, lr)
    sample = tokenizer.decode(model.generate(tokenizer.encode(PROMPT), run.size(120, 400), temperature=0.8, top_k=20, seed=2017))
    run.say("[bold]a sample (temperature 0.8, top-k 20):[/]")
    run.console.print(sample, markup=False, highlight=False)
    draw(run, history, attention_map(model, tokenizer, val_text[:context]), val_text[:context])
    chance, final = math.log(tokenizer.vocab_size), history["val"][-1]
    run.figures.update(validation_loss=final, ln_vocab=chance, parameters=model.num_parameters(),
                       iterations=iterations, sample=sample, history=history)  # fmt: skip
    goal, goal_text = (0.75 * chance, f"≤ 0.75 · ln V = {0.75 * chance:.2f}") if run.quick else (2.0, "≤ 2.0")
    return [
        kit.check("validation loss", final, f"{final:.3f}", goal_text, final <= goal),
        kit.check("below a know-nothing model", chance - final, f"{chance - final:.2f} nats under ln V = {chance:.2f}",
                  "> 1 nat", chance - final > 1.0),  # fmt: skip
    ]


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
