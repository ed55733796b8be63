"""A minimal plain-PyTorch GPT: the reference the service's GPT-2 step time is measured against.

What anyone would write by hand for GPT-2's shape (nanoGPT's `model.py`, trimmed): token and
position embeddings, pre-LayerNorm blocks with one fused QKV projection and
`scaled_dot_product_attention(is_causal=True)`, GPT-2's tanh GELU, a final LayerNorm and an
output layer tied to the token embedding; no dropout, no masks, no caches, no output classes.
Initialised like GPT-2 (normal 0.02, residual projections scaled by 1/sqrt(2 * layers)).
"""

from __future__ import annotations

import math
from typing import TypedDict

import torch
from torch import Tensor, nn
from torch.nn import functional


class GPTShape(TypedDict):
    vocab_size: int
    block_size: int
    n_layer: int
    n_embd: int
    n_head: int


class CausalSelfAttention(nn.Module):
    def __init__(self, shape: GPTShape) -> None:
        super().__init__()
        self.n_head = shape["n_head"]
        self.c_attn = nn.Linear(shape["n_embd"], 3 * shape["n_embd"])
        self.c_proj = nn.Linear(shape["n_embd"], shape["n_embd"])

    def forward(self, x: Tensor) -> Tensor:
        batch, seq, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=2)
        heads = (batch, seq, self.n_head, width // self.n_head)
        y = functional.scaled_dot_product_attention(
            q.view(heads).transpose(1, 2),
            k.view(heads).transpose(1, 2),
            v.view(heads).transpose(1, 2),
            is_causal=True,
        )
        out: Tensor = self.c_proj(y.transpose(1, 2).reshape(batch, seq, width))
        return out


class MLP(nn.Module):
    def __init__(self, shape: GPTShape) -> None:
        super().__init__()
        self.c_fc = nn.Linear(shape["n_embd"], 4 * shape["n_embd"])
        self.c_proj = nn.Linear(4 * shape["n_embd"], shape["n_embd"])

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.c_proj(functional.gelu(self.c_fc(x), approximate="tanh"))
        return out


class Block(nn.Module):
    def __init__(self, shape: GPTShape) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(shape["n_embd"])
        self.attn = CausalSelfAttention(shape)
        self.ln_2 = nn.LayerNorm(shape["n_embd"])
        self.mlp = MLP(shape)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        out: Tensor = x + self.mlp(self.ln_2(x))
        return out


class MinimalGPT(nn.Module):
    def __init__(self, shape: GPTShape) -> None:
        super().__init__()
        self.wte = nn.Embedding(shape["vocab_size"], shape["n_embd"])
        self.wpe = nn.Embedding(shape["block_size"], shape["n_embd"])
        self.h = nn.ModuleList(Block(shape) for _ in range(shape["n_layer"]))
        self.ln_f = nn.LayerNorm(shape["n_embd"])
        self.lm_head = nn.Linear(shape["n_embd"], shape["vocab_size"], bias=False)
        self.lm_head.weight = self.wte.weight
        self._init_weights(shape["n_layer"])

    def _init_weights(self, n_layer: int) -> None:
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif param.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(param, mean=0.0, std=std)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.h:
            x = block(x)
        logits: Tensor = self.lm_head(self.ln_f(x))
        return logits
