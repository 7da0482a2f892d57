"""Training steps of one layer, the same in tinytorch and in PyTorch: forward, `sum()` as the loss,
backward into the parameters **and the input** (as for any layer that is not the first one).
Gradients are reset before each step."""
from __future__ import annotations

from bench.harness import torch
from tinytorch.core.tensor import Tensor


def tinytorch_step(forward, model, x):
    """One tinytorch forward + backward; fresh gradients land on the model's parameters and on x."""
    x.zero_grad()
    model.zero_grad()
    forward(x).sum().backward()


def torch_step(forward, parameters, x):
    """The same in PyTorch: reset the gradients, forward, sum, backward."""
    x.grad = None
    for p in parameters:
        p.grad = None
    forward(x).sum().backward()


def steps(ours, model, x_np, theirs=None, theirs_parameters=()):
    """{"tinytorch": a step of `ours` (gradients into `model`'s parameters and the input),
    "torch": the same with `theirs`, or None} on the input x_np."""
    x = Tensor(x_np, requires_grad=True)
    both = {"tinytorch": lambda: tinytorch_step(ours, model, x), "torch": None}
    if theirs is not None:
        x_pt = torch().from_numpy(x_np.copy()).requires_grad_()
        parameters = list(theirs_parameters)
        both["torch"] = lambda: torch_step(theirs, parameters, x_pt)
    return both
