"""How much memory a model needs, counted from its settings without torch or a weight allocated: the training
jobs (agd.jobs.memory) and the planner (agd.plan.memory) refuse a model too large for its device with the same
words."""

# float32 weights and gradients and two optimizer moments (Adam's): a lower bound, activations not counted.
BYTES_PER_PARAMETER = 16
SMALLEST_VOCABULARY = 256  # character-level texts; the real vocabulary is known only once the text is read
# A conv net's parameters are a w^2 + b w + c in its base width w; a, from its conv layers alone, depends on the
# architecture only (b and c on the input channels, classes and biases), so a w^2 bounds the count from below.
CONV_WIDTH_SQUARED = {"vgg16": 3591, "resnet18": 2724, "resnet50": 5724}


def fcn_parameters(inputs: int, classes: int, depth: int, width: int, bias: bool) -> int:
    weights = inputs * width + (depth - 2) * width * width + width * classes
    return weights + ((depth - 1) * width + classes if bias else 0)


def lm_parameters(n_layer: int, n_embd: int, block_size: int, bias: bool) -> int:
    """The GPT's weights (nanoGPT's layout, tied embedding) at the smallest vocabulary a text can have."""
    per_layer = 12 * n_embd * n_embd + (13 * n_embd if bias else 0)
    return n_layer * per_layer + (SMALLEST_VOCABULARY + block_size) * n_embd


def too_large(parameters: int, capacity: int, where: str, flags: str) -> str | None:
    """A message naming `flags` if `parameters` cannot fit in `capacity` bytes of `where`, else None."""
    need = parameters * BYTES_PER_PARAMETER
    if need <= capacity:
        return None
    return (f"{flags}: the model has {parameters:.3g} parameters, at least {need / 2**30:,.0f} GiB for weights, "
            f"gradients and optimizer state, more than the {capacity / 2**30:,.0f} GiB of memory of {where}; "
            "use a smaller model")
