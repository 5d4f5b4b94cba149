"""Fully connected network of the paper's MLP experiments (bias-free Linear layers, sqrt(2)-scaled ReLU)."""

import math

import torch
from torch import nn
from torch.nn import functional as F


class FCN(nn.Module):
    """`depth` Linear layers: in_features -> width -> ... -> width -> num_classes.

    Hidden activations are sqrt(2) * relu(.), which keeps ||x|| roughly constant under AGD's
    orthogonal init; the output layer has no activation.
    """

    def __init__(self, in_features: int, num_classes: int, depth: int, width: int, bias: bool = False):
        super().__init__()
        if depth < 2:
            raise ValueError(f"FCN depth counts Linear layers and must be >= 2, got depth={depth}")
        self.initial = nn.Linear(in_features, width, bias=bias)
        self.layers = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(depth - 2))
        self.final = nn.Linear(width, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in (self.initial, *self.layers):
            x = math.sqrt(2) * F.relu(layer(x))
        return self.final(x)
