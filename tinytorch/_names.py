"""Where each name of the PyTorch-style namespaces lives: one table for the namespaces, which import
lazily from it, and for `tito/deps.py`, which reads it to know which lessons an import reaches.

A namespace imports nothing until a name is used, so `import tinytorch.nn` works in a student
edition where later lessons are not exported yet, and using a name whose lesson is missing says so.
Entries are "core.module" (same name) or "core.module:name" (PyTorch's name for a course name).
"""
import importlib

TENSOR = "core.tensor"
NAMESPACES = {
    "tinytorch": {
        **{name: TENSOR for name in ["Tensor", "tensor", "zeros", "ones", "full", "zeros_like", "ones_like",
                                     "arange", "eye", "rand", "randn", "from_numpy"]},
        "no_grad": "core.autograd",
        "manual_seed": "core.setup:set_seed",
        "set_seed": "core.setup",
        "set_num_threads": "core.setup",
        "get_num_threads": "core.setup",
    },
    "tinytorch.nn": {
        **{name: "core.layers" for name in ["Module", "Parameter", "Linear", "Dense"]},
        **{name: "core.networks" for name in ["Sequential", "Flatten", "MLP"]},
        **{name: "core.activations" for name in ["ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax"]},
        **{name: "core.spatial" for name in ["Conv2d", "Conv2D", "MaxPool2d", "MaxPool2D", "AvgPool2d", "AvgPool2D"]},
        **{name: "core.attention" for name in ["ScaledDotProductAttention", "MultiHeadAttention"]},
        **{name: "core.normalization" for name in ["BatchNorm1d", "BatchNorm2d", "BatchNorm1D", "BatchNorm2D",
                                                   "LayerNorm"]},
        **{name: "core.losses" for name in ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]},
        "Dropout": "core.regularization",
        "Embedding": "core.tinygpt",
    },
    "tinytorch.nn.utils": {
        "clip_grad_norm_": "core.optimizers",
        "clip_grad_norm": "core.optimizers",
        "torch_state_dict": "core.networks",
        "load_torch_state_dict": "core.networks",
    },
    "tinytorch.nn.functional": {  # functions calling a layer once, see tinytorch/nn/functional.py
        "relu": "core.activations:ReLU",
        "sigmoid": "core.activations:Sigmoid",
        "tanh": "core.activations:Tanh",
        "gelu": "core.activations:GELU",
        "softmax": "core.activations:Softmax",
        "log_softmax": "core.activations:LogSoftmax",
        "mse_loss": "core.losses:MeanSquaredError",
        "binary_cross_entropy": "core.losses:BinaryCrossEntropy",
        "binary_cross_entropy_with_logits": "core.losses:BCEWithLogitsLoss",
        "cross_entropy": "core.losses:CrossEntropyLoss",
        "scaled_dot_product_attention": "core.attention:ScaledDotProductAttention",
        "max_pool2d": "core.spatial:MaxPool2D",
        "avg_pool2d": "core.spatial:AvgPool2D",
    },
    "tinytorch.optim": {
        **{name: "core.optimizers" for name in ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "LRScheduler",
                                                "StepLR", "CosineWithWarmup"]},
    },
    "tinytorch.data": {
        **{name: "core.dataloader" for name in ["Dataset", "TensorDataset", "DataLoader", "load_digits",
                                                "digits_split"]},
    },
}
SUBMODULES = {"tinytorch": ["nn", "optim", "data", "tinygpt"], "tinytorch.nn": ["functional", "utils"]}
MODULE_ALIASES = {"tinytorch.tinygpt": "core.tinygpt"}  # a namespace that is one whole lesson


class NotBuiltYet(AttributeError):
    """A name whose lesson has not been exported yet (an AttributeError, so hasattr() says False)."""


def resolve(namespace, name):
    """The object `namespace.name` stands for, importing its lesson's module now."""
    module_name, _, attribute = NAMESPACES[namespace][name].partition(":")
    full_name = f"tinytorch.{module_name}"
    try:
        module = importlib.import_module(full_name)
    except ModuleNotFoundError as error:
        if error.name != full_name:
            raise
        raise NotBuiltYet(
            f"{namespace}.{name} lives in {full_name}, which is not exported yet: complete its lesson first"
        ) from None
    return getattr(module, attribute or name)


def lazy_namespace(namespace):
    """(__getattr__, __dir__) for a namespace module: names from the table, sub-namespaces on demand."""
    table, submodules = NAMESPACES[namespace], SUBMODULES.get(namespace, [])

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(f"{namespace}.{name}")
        if name not in table:
            raise AttributeError(f"module {namespace!r} has no attribute {name!r}")
        return resolve(namespace, name)

    def __dir__():
        return sorted([*table, *submodules])

    return __getattr__, __dir__
