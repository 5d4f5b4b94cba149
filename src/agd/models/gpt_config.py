"""The GPT's configuration, checked when it is made (no torch: planning checks a panel's model with it)."""

from dataclasses import dataclass

PARAMETRIZATIONS = ("standard", "agd")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = False
    parametrization: str = "standard"

    def __post_init__(self):
        for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be a positive integer, got {getattr(self, field)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}; "
                             "choose n_embd = n_head * head_dim")
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization {self.parametrization!r}: choose one of {PARAMETRIZATIONS}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout {self.dropout} must lie in [0, 1)")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head
