"""A decoder-only GPT in nanoGPT's layout, in its standard or its AGD parametrisation.

Parameter names follow nanoGPT (`transformer.wte`, `transformer.h.0.attn.c_attn`, ...), so the
transformer AGD rules, which are written against those names, read the same here as in the original.

`parametrization="standard"` is nanoGPT: N(0, 0.02) init (residual projections 0.02/sqrt(2 n_layer)),
attention logits scaled by 1/sqrt(head_dim). `parametrization="agd"` is the AGD transformer's model
(paper_spec §1.11c): attention logits scaled by 1/head_dim (muP), token embeddings multiplied by
n_embd/sqrt(vocab_size) and position embeddings by n_embd/sqrt(block_size); the weights are then
initialised by the optimizer (agd.optim.TransformerAGD.init_weights), not here.
"""

import math
from dataclasses import asdict

import torch
from torch import nn
from torch.nn import functional as F

from agd.models.gpt_config import GPTConfig


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v stacked
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        # One attention path, so that training and any fused kernel agree on the scale.
        self.scale = 1 / config.head_dim if config.parametrization == "agd" else 1 / math.sqrt(config.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one parameter, named transformer.wte.weight
        if config.parametrization == "agd":
            self.token_scale = config.n_embd / math.sqrt(config.vocab_size)
            self.position_scale = config.n_embd / math.sqrt(config.block_size)
        else:
            self.token_scale = self.position_scale = 1.0
            self.apply(self._standard_init)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _standard_init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; without the position embedding by default, as nanoGPT reports it."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits [B, T, vocab]; with targets also the mean next-token cross-entropy in nats."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        positions = torch.arange(T, device=idx.device)
        x = self.transformer.wte(idx) * self.token_scale + self.transformer.wpe(positions) * self.position_scale
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.reshape(-1))
        return logits, loss

    def describe(self) -> dict:
        return {**asdict(self.config), "num_params": self.num_params(non_embedding=False)}
