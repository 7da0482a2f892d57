"""Layers and losses under PyTorch's names (`nn.Linear`, `nn.Conv2d`, `nn.MSELoss`, ...), imported
lazily from the lessons' modules; see `tinytorch/_names.py` for where each one lives."""
from tinytorch._names import lazy_namespace

__getattr__, __dir__ = lazy_namespace(__name__)
