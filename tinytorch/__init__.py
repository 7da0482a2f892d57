"""TinyTorch: a deep-learning framework built from scratch in NumPy, one lesson at a time.

The framework lives in `tinytorch.core`, whose files are exported from the lessons in `modules/`
(`make complete MODULE=02_tensor`); `tinytorch.core` keeps the course's names. PyTorch's spellings
are here too, resolved lazily from `tinytorch/_names.py` so that whatever is built so far imports:

    from tinytorch import Tensor, nn, optim      # tinytorch.zeros, randn, no_grad, manual_seed, ...
    nn.Linear, nn.Conv2d, nn.functional.relu, nn.utils.clip_grad_norm_, optim.Adam, tinytorch.data.DataLoader
"""
from tinytorch._names import lazy_namespace

__version__ = "0.1.0"
__getattr__, __dir__ = lazy_namespace(__name__)
