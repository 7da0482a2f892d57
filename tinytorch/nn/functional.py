"""PyTorch's `torch.nn.functional`: each function calls a course layer once (which one: the table in
tinytorch/_names.py), so there is one implementation of every operation, the lesson's."""
from tinytorch._names import resolve

_HERE = __name__


def _layer(function_name):
    return resolve(_HERE, function_name)


def relu(input):
    return _layer("relu")()(input)


def sigmoid(input):
    return _layer("sigmoid")()(input)


def tanh(input):
    return _layer("tanh")()(input)


def gelu(input):
    return _layer("gelu")()(input)


def softmax(input, dim):
    return _layer("softmax")(dim=dim)(input)


def log_softmax(input, dim):
    return _layer("log_softmax")(dim=dim)(input)


def linear(input, weight, bias=None):
    """input @ weight.T + bias with PyTorch's weight layout (out_features, in_features)."""
    out = input @ weight.transpose()
    return out if bias is None else out + bias


def mse_loss(input, target):
    return _layer("mse_loss")()(input, target)


def binary_cross_entropy(input, target):
    return _layer("binary_cross_entropy")()(input, target)


def binary_cross_entropy_with_logits(input, target):
    return _layer("binary_cross_entropy_with_logits")()(input, target)


def cross_entropy(input, target):
    return _layer("cross_entropy")()(input, target)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False):
    return _layer("scaled_dot_product_attention")()(query, key, value, attn_mask=attn_mask, is_causal=is_causal)


def max_pool2d(input, kernel_size, stride=None):
    return _layer("max_pool2d")(kernel_size, stride)(input)


def avg_pool2d(input, kernel_size, stride=None):
    return _layer("avg_pool2d")(kernel_size, stride)(input)
