"""`clip_grad_norm_` and the PyTorch state-dict conversion, imported lazily (see tinytorch/_names.py)."""
from tinytorch._names import lazy_namespace

__getattr__, __dir__ = lazy_namespace(__name__)
