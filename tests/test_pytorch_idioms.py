"""Everyday PyTorch one-liners, typed as a PyTorch user would, run against tinytorch.

Each idiom is one line of code written once, with `torch`, `nn`, `F` and `optim` bound to tinytorch's
namespaces (and, when PyTorch is installed, to PyTorch's own), and PyTorch's result written next to
it. Every idiom must either give PyTorch's result or raise a clear error; none may silently give a
different answer. Where PyTorch is installed, each recorded result is checked against PyTorch itself.
The differences that remain are listed in the README's "Coming from PyTorch" section.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest

import tinytorch

SETUP = (
    "x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]); v = torch.tensor([3.0, 1.0, 2.0]); "
    "labels = torch.tensor([2, 0]); grid = torch.arange(16.0).reshape(1, 1, 4, 4)"
)


@dataclass(frozen=True)
class T:
    """A tensor result: its dtype name and its values (floats rounded to 4 decimals)."""

    dtype: str
    values: object


@dataclass(frozen=True)
class Raises:
    """Our result is this error, its message containing `words`; PyTorch must raise too."""

    error: type
    words: str = ""


LN2, LN4 = math.log(2), math.log(4)
IDIOMS = [
    # comparisons are elementwise and give boolean tensors
    ("x == x", T("bool", [[True] * 3] * 2)),
    ("x != 2.0", T("bool", [[True, False, True], [True, True, True]])),
    ("x > 2.5", T("bool", [[False, False, True], [True, True, True]])),
    ("x <= 2.0", T("bool", [[True, True, False], [False, False, False]])),
    ("x < v", T("bool", [[True, False, False], [False, False, False]])),
    ("x >= v", T("bool", [[False, True, True], [True, True, True]])),
    ("(x.argmax(dim=1) == labels).float().mean()", T("float32", 0.5)),
    ("(x.argmax(1) == labels).sum().item()", 1),
    ("len({x: 1, v: 2})", 2),
    ("len({x, v, x})", 2),
    # NumPy and Python see the numbers
    ("np.asarray(x).tolist()", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    ("np.array_equal(x, [[1, 2, 3], [4, 5, 6]])", True),
    ("bool(np.allclose(v, [3, 1, 2]))", True),
    ("float(x.sum())", 21.0),
    ("int(v.argmax())", 0),
    ("float(torch.tensor([2.5]))", 2.5),
    ("torch.tensor(3.5).item()", 3.5),
    ("x.tolist()", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    ("x.item()", Raises(ValueError, "one-element")),
    ("bool(x)", Raises(ValueError, "ambiguous")),
    # reductions with dim / keepdim
    ("x.sum(dim=0)", T("float32", [5.0, 7.0, 9.0])),
    ("x.sum(dim=1, keepdim=True)", T("float32", [[6.0], [15.0]])),
    ("x.sum((0, 1))", T("float32", 21.0)),
    ("x.mean(dim=-1)", T("float32", [2.0, 5.0])),
    ("x.mean()", T("float32", 3.5)),
    ("x.max()", T("float32", 6.0)),
    ("x.max(dim=1).values", T("float32", [3.0, 6.0])),
    ("x.max(dim=1).indices", T("int64", [2, 2])),
    ("x.max(1)[0]", T("float32", [3.0, 6.0])),
    ("x.max(dim=1, keepdim=True).values.shape", (2, 1)),
    ("x.min(dim=0)[1]", T("int64", [0, 0, 0])),
    ("x.min()", T("float32", 1.0)),
    ("x.argmax()", T("int64", 5)),
    ("x.argmin(dim=1)", T("int64", [0, 0])),
    # shapes
    ("x.shape", (2, 3)),
    ("x.shape[0]", 2),
    ("x.size()", (2, 3)),
    ("x.size(1)", 3),
    ("x.numel()", 6),
    ("x.dim()", 2),
    ("x.ndim", 2),
    ("x.view(3, 2)", T("float32", [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])),
    ("x.view(-1).shape", (6,)),
    ("x.T.shape", (3, 2)),
    ("x.T.view(-1)", Raises(RuntimeError, "reshape()")),
    ("x.unsqueeze(0).shape", (1, 2, 3)),
    ("x.unsqueeze(-1).shape", (2, 3, 1)),
    ("x.unsqueeze(1).squeeze(1).shape", (2, 3)),
    ("x[:1].squeeze().shape", (3,)),
    ("x.flatten()", T("float32", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
    ("torch.zeros(2, 3, 4).flatten(1).shape", (2, 12)),
    ("x.reshape(-1, 2).shape", (3, 2)),
    ("x.transpose(0, 1)", T("float32", [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]])),
    ("x.permute(1, 0).shape", (3, 2)),
    ("x[1]", T("float32", [4.0, 5.0, 6.0])),
    ("x[:, 0]", T("float32", [1.0, 4.0])),
    ("x[0, 1].item()", 2.0),
    ("x[torch.tensor([1, 0])]", T("float32", [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]])),
    # elementwise math
    ("2 ** v", T("float32", [8.0, 2.0, 4.0])),
    ("v ** 2", T("float32", [9.0, 1.0, 4.0])),
    ("x @ v", T("float32", [11.0, 29.0])),
    ("x.matmul(x.T)", T("float32", [[14.0, 32.0], [32.0, 77.0]])),
    ("(x * 2 - 1).sum().item()", 36.0),
    ("-x[0]", T("float32", [-1.0, -2.0, -3.0])),
    ("v.sqrt()", T("float32", [round(math.sqrt(3), 4), 1.0, round(math.sqrt(2), 4)])),
    ("x.clamp(min=2.0, max=5.0)", T("float32", [[2.0, 2.0, 3.0], [4.0, 5.0, 5.0]])),
    ("x.clamp(max=3.0)[1]", T("float32", [3.0, 3.0, 3.0])),
    ("c = x.clone(); c[0, 0] = 100.0; x[0, 0].item()", 1.0),
    # dtypes and factories
    ("torch.tensor([1, 2]).dtype", "int64"),
    ("a = np.zeros(2); t = torch.tensor(a); a[0] = 1.0; t", T("float64", [0.0, 0.0])),
    ("a = np.zeros(2); t = torch.from_numpy(a); a[0] = 1.0; t", T("float64", [1.0, 0.0])),
    ("torch.tensor([1.0, 2.0]).dtype", "float32"),
    ("labels.float()", T("float32", [2.0, 0.0])),
    ("x.long()[1]", T("int64", [4, 5, 6])),
    ("x.double().dtype", "float64"),
    ("torch.zeros(2, 3)", T("float32", [[0.0] * 3] * 2)),
    ("torch.zeros((2, 3)).shape", (2, 3)),
    ("torch.ones(3)", T("float32", [1.0, 1.0, 1.0])),
    ("torch.full((2, 2), 7.0)", T("float32", [[7.0, 7.0], [7.0, 7.0]])),
    ("torch.arange(5)", T("int64", [0, 1, 2, 3, 4])),
    ("torch.arange(0.0, 1.0, 0.25)", T("float32", [0.0, 0.25, 0.5, 0.75])),
    ("torch.eye(2)", T("float32", [[1.0, 0.0], [0.0, 1.0]])),
    ("torch.zeros_like(x).shape", (2, 3)),
    ("torch.ones_like(labels)", T("int64", [1, 1])),
    ("torch.randn(4, 5).shape", (4, 5)),
    ("torch.rand(100).min().item() >= 0", True),
    ("torch.randn(3, requires_grad=True).requires_grad", True),
    ("x.requires_grad", False),
    ("x.detach().numpy().shape", (2, 3)),
    # gradients
    ("t = torch.tensor([2.0], requires_grad=True); (t * t).sum().backward(); t.grad", T("float32", [4.0])),
    ("t = torch.tensor([2.0, 3.0], requires_grad=True); (2 ** t).sum().backward(); t.grad",
     T("float32", [round(4 * LN2, 4), round(8 * LN2, 4)])),
    ("t = torch.tensor([1.0, 5.0], requires_grad=True); t.clamp(max=3.0).sum().backward(); t.grad", T("float32", [1.0, 0.0])),
    ("t = torch.tensor([3.0, 1.0], requires_grad=True); t.min().backward(); t.grad", T("float32", [0.0, 1.0])),
    ("t = torch.tensor([1.0, 2.0], requires_grad=True); t.unsqueeze(0).flatten().sum().backward(); t.grad", T("float32", [1.0, 1.0])),
    ("t = torch.ones(2, requires_grad=True); t.grad = [1.0, 2.0]", Raises(TypeError, ".grad")),
    ("t = torch.ones(2, requires_grad=True); t.grad = torch.ones(3)", Raises(ValueError, "(3,)")),
    ("t = nn.Parameter(torch.ones(2)); t.grad = torch.full((2,), 5.0); nn.utils.clip_grad_norm_([t], max_norm=1.0); t.grad",
     T("float32", [0.7071, 0.7071])),
    # layers
    ("nn.Linear(3, 2)(x).shape", (2, 2)),
    ("nn.Linear(in_features=3, out_features=4)(x).shape", (2, 4)),
    ("nn.Linear(3, 2).bias.shape", (2,)),
    ("nn.Linear(3, 2, bias=False).bias is None", True),
    ("len(list(nn.Linear(3, 2).parameters()))", 2),
    ("sum(p.numel() for p in nn.Linear(3, 2).parameters())", 8),
    ("lin = nn.Linear(3, 2); lin.weight is list(lin.parameters())[0]", True),
    ("lin = nn.Linear(2, 2, bias=False); lin.weight = nn.Parameter(torch.eye(2) * 3); lin(torch.ones(1, 2))",
     T("float32", [[3.0, 3.0]])),
    ("lin = nn.Linear(2, 2); lin.weight = torch.zeros(2, 2)", Raises(TypeError, "Parameter")),
    ("nn.Linear(3, 2)(torch.ones(4, 5))", Raises(ValueError, "(4, 5)")),
    ("nn.Linear(3, 2).in_features", 3),
    ("nn.ReLU()(x - 3)", T("float32", [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])),
    ("F.relu(x - 3)[1]", T("float32", [1.0, 2.0, 3.0])),
    ("nn.Sigmoid()(torch.zeros(2))", T("float32", [0.5, 0.5])),
    ("nn.Softmax(dim=1)(torch.zeros(2, 4))[0]", T("float32", [0.25] * 4)),
    ("F.softmax(torch.zeros(1, 4), dim=-1)", T("float32", [[0.25] * 4])),
    ("F.log_softmax(torch.zeros(1, 2), dim=1)", T("float32", [[round(-LN2, 4)] * 2])),
    ("nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))(x).shape", (2, 1)),
    ("len(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))", 2),
    ("nn.Sequential(nn.Linear(3, 4), nn.ReLU())[0].out_features", 4),
    ("nn.Flatten()(torch.zeros(2, 3, 4)).shape", (2, 12)),
    ("nn.Conv2d(3, 8, kernel_size=3, padding=1)(torch.zeros(2, 3, 5, 5)).shape", (2, 8, 5, 5)),
    ("nn.Conv2d(3, 8, 3, stride=2)(torch.zeros(1, 3, 7, 7)).shape", (1, 8, 3, 3)),
    ("nn.Conv2d(3, 8, 3, stride=(2, 2))(torch.zeros(1, 3, 7, 7)).shape", (1, 8, 3, 3)),
    ("nn.Conv2d(3, 8, 3).weight.shape", (8, 3, 3, 3)),
    ("nn.Conv2d(3, 8, 3)(torch.zeros(1, 7, 7, 3))", Raises(ValueError, "channels-last")),
    ("nn.MaxPool2d(2)(grid)", T("float32", [[[[5.0, 7.0], [13.0, 15.0]]]])),
    ("nn.AvgPool2d(kernel_size=2, stride=2)(grid)", T("float32", [[[[2.5, 4.5], [10.5, 12.5]]]])),
    ("F.max_pool2d(grid, 2).shape", (1, 1, 2, 2)),
    ("nn.MaxPool2d(2)(torch.zeros(2, 4))", Raises(ValueError, "(N, C, H, W)")),
    ("nn.LayerNorm(3)(x)[0]", T("float32", [-1.2247, 0.0, 1.2247])),
    ("nn.LayerNorm(3).weight.shape", (3,)),
    ("nn.BatchNorm1d(3)(x).shape", (2, 3)),
    ("nn.BatchNorm1d(3).bias.shape", (3,)),
    ("nn.Dropout(0.5).eval()(x)[0]", T("float32", [1.0, 2.0, 3.0])),
    ("nn.Embedding(10, 4)(torch.tensor([1, 2])).shape", (2, 4)),
    ("nn.Embedding(10, 4).weight.shape", (10, 4)),
    # losses
    ("nn.MSELoss()(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))", T("float32", 2.0)),
    ("F.mse_loss(torch.tensor([0.0]), torch.tensor([3.0])).item()", 9.0),
    ("nn.BCELoss()(torch.tensor([0.5]), torch.tensor([1.0]))", T("float32", round(LN2, 4))),
    ("nn.BCEWithLogitsLoss()(torch.tensor([0.0]), torch.tensor([1.0]))", T("float32", round(LN2, 4))),
    ("nn.CrossEntropyLoss()(torch.zeros(2, 4), torch.tensor([1, 3]))", T("float32", round(LN4, 4))),
    ("F.cross_entropy(torch.zeros(2, 4), torch.tensor([1, 3])).item()", round(LN4, 4)),
    # attention
    ("F.scaled_dot_product_attention(torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8)).shape",
     (1, 2, 4, 8)),
    ("F.scaled_dot_product_attention(torch.eye(2)[None], torch.eye(2)[None], torch.tensor([[[1.0], [3.0]]]), is_causal=True)",
     T("float32", [[[1.0], [2.3395]]])),
    ("F.scaled_dot_product_attention(torch.ones(1, 4, 8), torch.ones(1, 4, 6), torch.ones(1, 4, 8))",
     Raises(ValueError, "k (1, 4, 6)")),
    # optimizers
    ("optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1).param_groups[0]['lr']", 0.1),
    ("optim.Adam(nn.Linear(3, 2).parameters(), lr=1e-3).state_dict()['param_groups'][0]['params']", [0, 1]),
    ("len(optim.Adam(nn.Linear(3, 2).parameters()).state_dict()['state'])", 0),
    ("lin = nn.Linear(1, 1); opt = optim.SGD(lin.parameters(), lr=0.1); opt.zero_grad(); "
     "((lin(torch.ones(1, 1)) - 1) ** 2).mean().backward(); opt.step(); lin.weight.grad.shape", (1, 1)),
    ("lin = nn.Linear(1, 1); opt = optim.Adam(lin.parameters()); lin(torch.ones(1, 1)).sum().backward(); opt.step(); "
     "int(opt.state_dict()['state'][0]['step'])", 1),
]


def plain(value):
    """A framework-neutral form of a result: tensors become T(dtype, rounded values), sizes tuples."""
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a tinytorch or a PyTorch tensor
        return T(str(value.dtype).replace("torch.", ""), _rounded(value.tolist()))
    if isinstance(value, np.dtype) or type(value).__name__ == "dtype":
        return str(value).replace("torch.", "")
    if isinstance(value, tuple):  # shapes (torch.Size is a tuple) and (values, indices) pairs
        return tuple(plain(item) for item in value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def _rounded(values):
    if isinstance(values, list):
        return [_rounded(v) for v in values]
    return round(values, 4) if isinstance(values, float) else values


def run(code, namespace):
    """Execute one idiom line (statements separated by "; "); the value of a final expression counts."""
    scope = dict(namespace)
    exec(SETUP, scope)
    *statements, last = code.split("; ")
    exec("\n".join(statements), scope)
    try:
        final = compile(last, "<idiom>", "eval")
    except SyntaxError:  # an assignment: only whether it raises matters
        exec(last, scope)
        return None
    return eval(final, scope)


def tinytorch_names():
    return {"torch": tinytorch, "nn": tinytorch.nn, "F": tinytorch.nn.functional, "optim": tinytorch.optim, "np": np}


def test_at_least_eighty_idioms():
    assert len(IDIOMS) >= 80 and len({code for code, _ in IDIOMS}) == len(IDIOMS)


@pytest.mark.parametrize("code, expected", IDIOMS, ids=[code for code, _ in IDIOMS])
def test_idiom_works_like_pytorch_or_raises_clearly(code, expected):
    if isinstance(expected, Raises):
        with pytest.raises(expected.error, match=re.escape(expected.words)):
            run(code, tinytorch_names())
    else:
        assert plain(run(code, tinytorch_names())) == expected


@pytest.mark.parametrize("code, expected", IDIOMS, ids=[code for code, _ in IDIOMS])
def test_recorded_result_is_pytorchs(code, expected):
    torch = pytest.importorskip("torch")
    names = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "optim": torch.optim, "np": np}
    torch.manual_seed(0)
    if isinstance(expected, Raises):
        with pytest.raises(Exception):
            run(code, names)
    else:
        assert plain(run(code, names)) == expected
