"""Train TinyGPT on the shipped Shakespeare: the capstone's full-size run.

    .venv/bin/python -m bench.train_tinygpt --iters 2000            # nanoGPT's CPU setting
    .venv/bin/python -m bench.train_tinygpt --iters 3000 --resume   # continue a saved run

The defaults are nanoGPT's documented CPU command for character-level Shakespeare (4 layers,
4 heads, 128-wide, context 64, batch 12, no dropout, lr 1e-3 with 100 warm-up steps and a cosine
to 1e-4 at the last iteration, AdamW betas (0.9, 0.99), weight decay 0.1 on matrices only,
gradient norm clipped to 1, validation loss every 250 steps on 20 batches).

Everything comes from tinytorch: the model from `core.tinygpt`; batches from Module 08's
`DataLoader` over `TextWindows`; `AdamW`, `CosineWithWarmup` and `clip_grad_norm` from Module 10.
The run saves a checkpoint (model, optimizer state, schedule, random state, history) to
`build/tinygpt/` at every evaluation, so `--resume` continues exactly where it stopped: the same
batches, the same numbers. At the end it evaluates the validation loss on 200 fixed batches,
prints a sample, and writes `build/tinygpt/report.json`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

try:
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.dataloader import DataLoader
    from tinytorch.core.optimizers import AdamW, CosineWithWarmup, clip_grad_norm
    from tinytorch.core.setup import rng, set_seed
    from tinytorch.core.tinygpt import CharTokenizer, GPTConfig, TextWindows, TinyGPT, load_shakespeare, shakespeare_split

    NOT_EXPORTED = None
except ImportError as error:  # a fresh clone: the lessons are not exported yet; main() says so
    NOT_EXPORTED = error
from tito.manifest import load

COURSE = load(Path(__file__).resolve().parents[1])
OUT = COURSE.build.tinygpt
CHECKPOINT, VOCAB, REPORT = "checkpoint.npz", "vocab.json", "report.json"
FINAL_EVAL_BATCHES = 200


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.train_tinygpt", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--iters", type=int, default=2000, help="training iterations in total (default 2000)")
    add("--batch-size", type=int, default=12)
    add("--block-size", type=int, default=64)
    add("--n-layer", type=int, default=4)
    add("--n-head", type=int, default=4)
    add("--n-embd", type=int, default=128)
    add("--dropout", type=float, default=0.0)
    add("--lr", type=float, default=1e-3, help="peak learning rate")
    add("--min-lr", type=float, default=1e-4, help="learning rate at the end of the cosine")
    add("--warmup", type=int, default=100, help="linear warm-up iterations")
    add("--weight-decay", type=float, default=0.1)
    add("--grad-clip", type=float, default=1.0, help="clip the total gradient norm to this (0: off)")
    add("--eval-interval", type=int, default=250, help="estimate the losses every this many iterations")
    add("--eval-iters", type=int, default=20, help="batches per periodic loss estimate")
    add("--final-eval-iters", type=int, default=FINAL_EVAL_BATCHES, help="batches for the final validation loss")
    add("--sample-tokens", type=int, default=500, help="characters to generate at the end (0: none)")
    add("--seed", type=int, default=1337)
    add("--out", type=Path, default=OUT, help="folder for the checkpoint, vocabulary and report")
    add("--resume", action="store_true", help="continue from the checkpoint in --out")
    add("--quiet", action="store_true", help="no progress bar or log lines")
    args = parser.parse_args(argv)
    for problem in invalid(args):
        parser.error(problem)
    return args


AT_LEAST_ONE = ("iters", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "eval_interval", "eval_iters",
                "final_eval_iters")  # fmt: skip
AT_LEAST_ZERO = ("warmup", "weight_decay", "grad_clip", "sample_tokens", "min_lr")


def invalid(args) -> list[str]:
    """Every setting that cannot work, as a sentence naming the option (argparse prints the first)."""
    problems = [f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
                for name in AT_LEAST_ONE if getattr(args, name) < 1]  # fmt: skip
    problems += [f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}"
                 for name in AT_LEAST_ZERO if getattr(args, name) < 0]  # fmt: skip
    if not 0 <= args.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 < args.lr:
        problems.append(f"--lr must be positive, got {args.lr}")
    elif args.min_lr > args.lr:
        problems.append(f"--min-lr ({args.min_lr}) must not exceed --lr ({args.lr})")
    if args.n_head >= 1 and args.n_embd % args.n_head:
        problems.append(f"--n-embd ({args.n_embd}) must be a multiple of --n-head ({args.n_head})")
    if args.iters >= 1 and args.warmup >= args.iters:
        problems.append(f"--warmup ({args.warmup}) must be fewer than --iters ({args.iters}): "
                        f"try --warmup {args.iters // 10}")  # fmt: skip
    return problems


def param_groups(model, weight_decay):
    """nanoGPT's rule: decay the matrices (Dense weights, embedding tables), not biases or LayerNorm."""
    params = model.parameters()
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def training_batches(dataset, batch_size, seed, start):
    """Shuffled training batches from the `start`-th on; epoch e is a DataLoader seeded with seed + e,
    so any position in the stream can be recreated (that is what resuming needs)."""
    per_epoch = len(dataset) // batch_size
    epoch, offset = divmod(start, per_epoch)
    while True:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed + epoch)
        yield from itertools.islice(loader, offset, None)
        epoch, offset = epoch + 1, 0


def fixed_batches(dataset, batch_size, count, seed):
    """The same `count` random batches every time: loss estimates that differ only because the model did."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed)
    return list(itertools.islice(loader, count))


def estimate_loss(model, batches):
    """Mean loss over `batches` in evaluation mode, without recording a graph."""
    was_training = model.training
    model.eval()
    with no_grad():
        losses = [model(x, y)[1].item() for x, y in batches]
    model.train(was_training)
    return float(np.mean(losses))


def train_step(model, optimizer, scheduler, x, y, grad_clip):
    """One iteration: forward, backward, clip, update, advance the schedule. Returns (loss, gradient norm)."""
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    norm = clip_grad_norm(model.parameters(), grad_clip) if grad_clip else float("nan")
    optimizer.step()
    scheduler.step()
    return loss.item(), norm


def save_checkpoint(path, model, optimizer, scheduler, meta):
    """Model, optimizer state (by parameter name) and the run's metadata in one .npz, written atomically."""
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    for name, parameter in model.named_parameters():
        for key, value in optimizer.state.get(parameter, {}).items():
            arrays[f"optimizer/{name}/{key}"] = np.asarray(value)
    meta = {**meta, "scheduler_step": scheduler.last_epoch, "rng_state": rng().bit_generator.state}
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def load_checkpoint(path, model, optimizer, scheduler):
    """Restore what save_checkpoint wrote into the given objects; return the metadata."""
    with np.load(path) as archive:
        meta = json.loads(str(archive["meta"]))
        model.load_state_dict({k.removeprefix("model/"): archive[k] for k in archive.files if k.startswith("model/")})
        for name, parameter in model.named_parameters():
            prefix = f"optimizer/{name}/"
            state = {k[len(prefix) :]: archive[k] for k in archive.files if k.startswith(prefix)}
            if state:
                optimizer.state[parameter] = {k: v.item() if v.ndim == 0 else v.copy() for k, v in state.items()}
    scheduler.last_epoch = meta["scheduler_step"]
    for group, lr in zip(optimizer.param_groups, scheduler.get_lr()):
        group["lr"] = lr
    rng().bit_generator.state = meta["rng_state"]
    return meta


def build(args):
    """Data, tokenizer, model, optimizer and schedule for the settings in `args`."""
    text = load_shakespeare()
    train_text, val_text = shakespeare_split()
    tokenizer = CharTokenizer().fit(text)  # the whole corpus: every validation character has an id
    set_seed(args.seed)
    config = GPTConfig(tokenizer.vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd, args.dropout)
    model = TinyGPT(config)
    optimizer = AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.99))
    scheduler = CosineWithWarmup(optimizer, warmup_steps=args.warmup, total_steps=args.iters, min_lr=args.min_lr)
    train_set = TextWindows(tokenizer.encode(train_text), args.block_size)
    val_set = TextWindows(tokenizer.encode(val_text), args.block_size)
    return tokenizer, model, optimizer, scheduler, train_set, val_set


def train(args, console=None):
    """Run (or resume) training as `args` say; return the report (also written to args.out)."""
    console = console or Console(quiet=args.quiet, soft_wrap=True)
    wall_start = time.perf_counter()
    tokenizer, model, optimizer, scheduler, train_set, val_set = build(args)
    eval_sets = {
        "train": fixed_batches(train_set, args.batch_size, args.eval_iters, seed=args.seed + 1),
        "val": fixed_batches(val_set, args.batch_size, args.eval_iters, seed=args.seed + 2),
    }
    checkpoint = args.out / CHECKPOINT
    start, history, elapsed = 0, [], 0.0
    if args.resume and checkpoint.exists():
        meta = load_checkpoint(checkpoint, model, optimizer, scheduler)
        start, history, elapsed = meta["iteration"], meta["history"], meta["seconds"]
        console.print(f"resumed from {checkpoint} at iteration {start}")
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(args.out / VOCAB)
    console.print(f"TinyGPT {asdict(model.config)}: {model.num_parameters():,} parameters; "
                  f"{len(train_set):,} training windows, {len(val_set):,} validation windows")  # fmt: skip

    def evaluate(iteration):
        losses = {name: estimate_loss(model, batches) for name, batches in eval_sets.items()}
        history.append({"iteration": iteration, **losses, "seconds": round(elapsed, 2)})
        console.print(f"iter {iteration:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
                      f"({elapsed:.0f} s)")  # fmt: skip
        meta = {"iteration": iteration, "history": history, "seconds": elapsed, "args": _jsonable(args)}
        save_checkpoint(checkpoint, model, optimizer, scheduler, meta)

    batches = training_batches(train_set, args.batch_size, args.seed, start)
    columns = [TextColumn("[bold]TinyGPT"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]  # fmt: skip
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        task = progress.add_task("train", total=args.iters, completed=start, status="")
        for iteration in range(start, args.iters):
            if iteration % args.eval_interval == 0 and not (history and history[-1]["iteration"] == iteration):
                evaluate(iteration)
            tick = time.perf_counter()
            x, y = next(batches)
            loss, norm = train_step(model, optimizer, scheduler, x, y, args.grad_clip)
            elapsed += time.perf_counter() - tick
            lr = optimizer.param_groups[0]["lr"]
            progress.update(task, advance=1, status=f"loss {loss:.3f}  |g| {norm:.2f}  lr {lr:.2e}")
        if not (history and history[-1]["iteration"] == args.iters):
            evaluate(args.iters)

    final_batches = fixed_batches(val_set, args.batch_size, args.final_eval_iters, seed=args.seed + 3)
    report = {
        "config": asdict(model.config),
        "parameters": model.num_parameters(),
        "iterations": args.iters,
        "training_seconds": round(elapsed, 1),  # the training steps, over all resumed sessions
        "wall_seconds_this_session": None,  # filled in below: steps + evaluations + sampling
        "seconds_per_iteration": round(elapsed / max(1, args.iters), 4),
        "val_loss": history[-1]["val"],
        f"val_loss_{args.final_eval_iters}_batches": round(estimate_loss(model, final_batches), 4),
        "history": history,
    }
    if args.sample_tokens:
        ids = model.generate(tokenizer.encode("\n"), args.sample_tokens, temperature=0.8, top_k=200, seed=args.seed)
        report["sample"] = tokenizer.decode(ids)
        console.rule("sample (temperature 0.8, top_k 200)")
        console.print(report["sample"], markup=False, highlight=False)
        console.rule()
    report["wall_seconds_this_session"] = round(time.perf_counter() - wall_start, 1)
    console.print(f"validation loss after {args.iters} iterations: {report['val_loss']:.4f} "
                  f"({args.eval_iters} batches), {report[f'val_loss_{args.final_eval_iters}_batches']:.4f} "
                  f"({args.final_eval_iters} batches); training steps {elapsed:.0f} s, "
                  f"this session's wall time {report['wall_seconds_this_session']:.0f} s")  # fmt: skip
    (args.out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _jsonable(args):
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def main(argv=None):
    args = parse_args(argv)
    if NOT_EXPORTED is not None:
        print(f"{NOT_EXPORTED}. Run `make` first: it exports your lessons into the tinytorch package.",
              file=sys.stderr)  # fmt: skip
        return 1
    from bench.needs import skip_line, waiting_for
    from tito import state

    waiting = waiting_for([Path(__file__)], state.compute(COURSE))
    if waiting:
        print(skip_line("training TinyGPT", waiting), file=sys.stderr)
        return 1
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
