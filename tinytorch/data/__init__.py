"""Datasets and the DataLoader (PyTorch's `torch.utils.data`), imported lazily (see tinytorch/_names.py).
This folder also holds the data files that ship with the course (see README.md here)."""
from tinytorch._names import lazy_namespace

__getattr__, __dir__ = lazy_namespace(__name__)
