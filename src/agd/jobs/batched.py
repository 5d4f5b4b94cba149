"""Several runs of one architecture stepped as one network: each layer's weights stacked, one forward pass for all.

`stacked(models)` mirrors the first model's module tree and replaces every Linear, Conv2d and BatchNorm2d
by a layer that computes all K runs at once; the models' own forward code runs unchanged. Activations
carry the runs side by side along the feature (channel) axis: a batch is (B, K*C, ...), run k's features
in the k-th block, which keeps every channel-wise operation (ReLU, pooling, residual additions, flatten)
correct for all runs at once. A first layer whose input has the width of one run's input applies every
run to that same input (runs that share their batches); an input K times as wide carries each run its own.

The parameters stay those of the K models (stacked on the fly, so gradients flow back to each model's own
tensors), and so does BatchNorm's running statistics: every run keeps its own optimizer, state and checkpoint.
"""

import copy

import torch
from torch import nn
from torch.nn import functional as F


class BatchingError(ValueError):
    """The models cannot be stepped as one network (a layer type it does not know, or different shapes)."""


class Stacked(nn.Module):
    """A layer standing for the same layer of K models (not registered: their parameters stay theirs)."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = tuple(layers)

    def stacked(self, name: str, dim: int = 0) -> torch.Tensor | None:
        tensors = [getattr(layer, name) for layer in self.layers]
        if tensors[0] is None:
            return None
        return torch.stack(tensors) if dim is None else torch.cat(tensors, dim)


class StackedLinear(Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, first = len(self.layers), self.layers[0]
        weight = self.stacked("weight", dim=None).transpose(1, 2)  # (K, in, out)
        if x.shape[1] == first.in_features:
            y = torch.matmul(x, weight)  # the same input for every run: (K, B, out)
        else:
            y = torch.bmm(x.reshape(len(x), k, first.in_features).transpose(0, 1), weight)
        bias = self.stacked("bias", dim=None)
        if bias is not None:
            y = y + bias[:, None, :]
        return y.transpose(0, 1).reshape(len(x), k * first.out_features)


class StackedConv2d(Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.layers[0]
        groups = first.groups if x.shape[1] == first.in_channels else first.groups * len(self.layers)
        return F.conv2d(x, self.stacked("weight"), self.stacked("bias"), first.stride, first.padding, first.dilation,
                        groups)


class StackedBatchNorm2d(Stacked):
    """Batch statistics per channel, so per run; the running statistics are read from and written back to each
    run's own BatchNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.layers[0]
        tracking = first.track_running_stats
        if self.training and tracking:
            for layer in self.layers:
                layer.num_batches_tracked.add_(1)
        momentum = first.momentum
        if self.training and tracking and momentum is None:
            momentum = 1.0 / float(first.num_batches_tracked)
        mean, var = (self.stacked("running_mean"), self.stacked("running_var")) if tracking else (None, None)
        out = F.batch_norm(x, mean, var, self.stacked("weight"), self.stacked("bias"),
                           self.training or not tracking, momentum or 0.0, first.eps)
        if self.training and tracking:
            for layer, layer_mean, layer_var in zip(self.layers, mean.chunk(len(self.layers)),
                                                    var.chunk(len(self.layers))):
                layer.running_mean.copy_(layer_mean)
                layer.running_var.copy_(layer_var)
        return out


STACKED = {nn.Linear: StackedLinear, nn.Conv2d: StackedConv2d, nn.BatchNorm2d: StackedBatchNorm2d}


def signature(model: nn.Module) -> list[tuple]:
    """What must agree between models stepped together: module types, parameter and buffer shapes."""
    return [(name, type(module).__name__, tuple((n, tuple(t.shape)) for n, t in module.named_parameters(recurse=False)),
             tuple((n, tuple(t.shape)) for n, t in module.named_buffers(recurse=False)))
            for name, module in model.named_modules()]


def stacked(models: list[nn.Module]) -> nn.Module:
    """One network that computes `models` at once (see the module docstring); raises BatchingError."""
    first = models[0]
    if any(signature(model) != signature(first) for model in models[1:]):
        raise BatchingError("the models differ in their layers or shapes")
    net = copy.deepcopy(first)
    for name, module in list(net.named_modules()):
        if type(module) in STACKED:
            if getattr(module, "padding_mode", "zeros") != "zeros":
                raise BatchingError(f"{name}: only zero-padded convolutions can be stacked")
            layers = [model.get_submodule(name) for model in models]
            net.set_submodule(name, STACKED[type(module)](layers))
        elif any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            raise BatchingError(f"{name or 'the model'} ({type(module).__name__}) holds parameters of a kind that "
                                "cannot be stacked")
    return net


def split(logits: torch.Tensor, runs: int) -> list[torch.Tensor]:
    """The (B, K*C) output of a stacked network as each run's (B, C) logits."""
    return list(logits.view(len(logits), runs, -1).unbind(1))


def stack_inputs(inputs: list[torch.Tensor]) -> torch.Tensor:
    """Each run's own batch side by side along the feature axis: (B, K*C, ...)."""
    return torch.cat(inputs, dim=1)
