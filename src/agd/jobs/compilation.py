"""Whether to torch.compile a model (--compile): `auto` compiles on CUDA, once a tiny compiled function has run
there. Compiling needs more than torch (on a GPU, Triton builds its kernels with a C compiler and Python's
headers; on the CPU, Inductor needs a C++ compiler), so a node without them trains eager, saying why in one
line, instead of failing at the first step."""

import sys

import torch

# Device types on which --compile auto compiles (where it pays for its compile time).
COMPILED_BY_DEFAULT = ("cuda",)


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile does not work on `device` on this node, from compiling and running a tiny function there,
    or None if it does."""

    def probe(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x) * 2 + 1

    try:
        x = torch.linspace(-2, 2, 64, device=device)
        if not torch.allclose(torch.compile(probe)(x), probe(x), rtol=1e-4, atol=1e-5):
            return "a compiled function computed another result than eager"
    except Exception as error:  # any failure of the compiler stack means: do not compile here
        lines = str(error).strip().splitlines()
        return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
    finally:
        torch._dynamo.reset()
    return None


def use_compile(mode: str, device: torch.device) -> bool:
    """--compile yes or no as asked; auto on the device types of COMPILED_BY_DEFAULT where compile_problem finds
    nothing, else eager with one line saying why."""
    if mode != "auto":
        return mode == "yes"
    if device.type not in COMPILED_BY_DEFAULT:
        return False
    problem = compile_problem(device)
    if problem:
        print(f"--compile auto: torch.compile does not work on this node ({problem}); training eager instead",
              file=sys.stderr, flush=True)
    return problem is None
