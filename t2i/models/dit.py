"""The diffusion transformer (DiT): patches, 2D sin-cos positions, adaLN-Zero blocks of
self-attention, cross-attention to the text tokens and an MLP.

forward(x_t, t, tokens, mask, s=None) -> raw prediction with the shape of x_t. The model knows no
noise schedule, loss or guidance: what the prediction means (velocity, clean image, ...) is the
objective's business (objectives.py), and guidance is the sampler's (samplers.py). A backbone
built with `two_times` also sees the end s >= t of an interval (few-step objectives predict the
average velocity from t to s): the interval length s - t is embedded like t and added to the
time embedding; without s it is 0, the instantaneous velocity.

Peebles & Xie, "Scalable Diffusion Models with Transformers" (2023): patchify, adaLN-Zero,
zero-initialised output. Cross-attention to the text tokens sits between self-attention and the
MLP, as in PixArt-alpha; pooled text is added to the time embedding so it also drives adaLN.
With model.text_attention=joint there is no cross-attention: the text tokens join the image
tokens in every block's self-attention and MLP (U-ViT; SD3's MMDiT with shared weights).
model.text_layers puts a few transformer layers over the text tokens alone before the blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of continuous t in [0, 1] (scaled by 1000 so that the frequencies
    resolve the small time differences of a 25-step sampler, as with integer DDPM steps)."""
    half = dim // 2
    dtype = torch.promote_types(t.dtype, torch.float32)  # float64 stays float64 (tests)
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=dtype) / half)
    args = 1000.0 * t.to(dtype)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)


def sincos_1d(dim: int, n: int) -> torch.Tensor:
    """Fixed sin-cos embedding of positions 0..n-1 (Transformer), float64 (n, dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d(dim: int, h: int, w: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding (MAE/DiT): half the channels encode the row, half the
    column."""
    rows = sincos_1d(dim // 2, h)[:, None, :].expand(h, w, dim // 2)
    cols = sincos_1d(dim // 2, w)[None, :, :].expand(h, w, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(h * w, dim).float()  # (N, D)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Kernelised attention (Katharopoulos et al. 2020): softmax(q k^T) v is replaced by
    phi(q) (phi(k)^T v), normalised by phi(q) sum_j phi(k_j), with phi = elu + 1 > 0. Summing
    phi(k)^T v first costs O(N d^2) instead of O(N^2 d): linear in the number of tokens."""
    q, k = F.elu(q.float()) + 1, F.elu(k.float()) + 1  # (B, H, N, hd)
    kv = torch.einsum("bhnd,bhne->bhde", k, v.float())  # (B, H, hd, hd)
    norm = torch.einsum("bhnd,bhd->bhn", q, k.sum(2)).clamp(min=1e-6)  # (B, H, N)
    return (torch.einsum("bhnd,bhde->bhne", q, kv) / norm[..., None]).to(v.dtype)


class Named(nn.Module):
    """A module whose parts have names. Checkpoints written before they had (t2i 0.1.0, when
    they were `nn.Sequential`s) index them; `LEGACY` maps those indices to the names, so every
    old checkpoint still loads."""

    LEGACY: dict[str, str] = {}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            index, _, rest = key[len(prefix):].partition(".")
            if index in self.LEGACY:
                state_dict[f"{prefix}{self.LEGACY[index]}.{rest}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class MLP(Named):
    """Linear -> activation -> linear: the blocks' feed-forward (GELU) and the time embedding's
    (SiLU, as DiT)."""

    LEGACY = {"0": "fc1", "2": "fc2"}

    def __init__(self, dim_in: int, hidden: int, dim_out: int, act: nn.Module):
        super().__init__()
        self.fc1 = nn.Linear(dim_in, hidden)
        self.act = act
        self.fc2 = nn.Linear(hidden, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Modulation(Named):
    """SiLU -> linear: the conditioning vector turned into n shift/scale/gate vectors (adaLN)."""

    LEGACY = {"1": "proj"}

    def __init__(self, dim: int, n: int):
        super().__init__()
        self.act = nn.SiLU()
        self.proj = nn.Linear(dim, n * dim)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(c))


class Attention(nn.Module):
    """Multi-head attention through SDPA (FlashAttention / memory-efficient kernels on GPUs),
    or linear attention (self-attention only: the text has few tokens)."""

    def __init__(self, dim: int, heads: int, cross: bool = False, linear: bool = False):
        super().__init__()
        self.heads = heads
        self.cross = cross
        self.linear = linear and not cross
        if cross:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = x.shape
        H = self.heads
        if self.cross:
            q = self.q(x).view(B, N, H, D // H).transpose(1, 2)  # (B, H, N, hd)
            k, v = self.kv(context).view(B, -1, 2, H, D // H).permute(2, 0, 3, 1, 4)  # (B, H, L, hd)
        else:
            q, k, v = self.qkv(x).view(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)  # (B, H, N, hd)
        # Which keys may be read: the text's real tokens (cross), or all tokens but the text's
        # padding (joint self-attention).
        attn_mask = mask[:, None, None, :] if mask is not None else None  # (B, 1, 1, keys)
        if self.linear:
            out = linear_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """adaLN-Zero block: self-attention, cross-attention to text, MLP; each residual branch is
    shifted/scaled by the conditioning and multiplied by a gate that starts at zero. A `joint`
    block has no cross-attention: the text tokens ride along with the image tokens (the caller
    joins them), and `mask` then marks which of all the tokens self-attention may read."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, linear: bool = False,
                 joint: bool = False):
        super().__init__()
        self.joint = joint
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads, linear=linear)
        if not joint:
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.cross = Attention(dim, heads, cross=True)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, nn.GELU(approximate="tanh"))
        self.ada = Modulation(dim, 6 if joint else 9)

    def forward(self, x, c, context, mask):
        if self.joint:
            (sh1, sc1, g1, sh3, sc3, g3) = self.ada(c).chunk(6, dim=-1)
            x = x + g1[:, None] * self.attn(modulate(self.norm1(x), sh1, sc1), mask=mask)
        else:
            (sh1, sc1, g1, sh2, sc2, g2, sh3, sc3, g3) = self.ada(c).chunk(9, dim=-1)
            x = x + g1[:, None] * self.attn(modulate(self.norm1(x), sh1, sc1))
            x = x + g2[:, None] * self.cross(modulate(self.norm2(x), sh2, sc2), context, mask)
        x = x + g3[:, None] * self.mlp(modulate(self.norm3(x), sh3, sc3))
        return x


def interval(t: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """The interval length s - t a two-time backbone is conditioned on (0 without s)."""
    return torch.zeros_like(t) if s is None else s - t


class TextMLP(nn.Module):
    """One step of the text stream (model.text_stream): the text tokens refined by their own
    pre-norm MLP, residually, before a block attends to them (the flow-matching design's
    separate text MLPs, as in MMDiT). The output layer starts at zero, so an untrained stream
    is the identity and the model starts as plain cross-attention to the encoder's tokens."""

    def __init__(self, dim: int, mlp_ratio: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, nn.GELU(approximate="tanh"))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return context + self.mlp(self.norm(context))


class TextLayer(nn.Module):
    """One layer of the text refiner (model.text_layers): pre-norm self-attention over the text
    tokens (padding never read), then a text-stream MLP, both residual. A frozen sentence
    encoder's tokens of "a red circle to the left of a blue square" and "... to the right of
    ..." differ in one place; to draw them, the image would have to combine "left", word order
    and colour across two hops of cross-attention. A refiner trained with the model can write
    "the left object" into "red" first (Lumina-Image 2.0's context refiner). Its output layers
    start at zero: an untrained refiner is the identity."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.mlp = TextMLP(dim, mlp_ratio)

    def forward(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(context + self.attn(self.norm(context), mask=mask))


class DiT(nn.Module):
    """The diffusion transformer: an image (or latent) cut into p x p patches, each a token with
    a fixed 2D position; `depth` adaLN-Zero blocks conditioned on the time (and interval)
    embedding plus the pooled text, each attending to the text tokens; a final modulated
    linear layer back to patches. `cfg` is a `ModelConfig`; `text_dim` the encoder's width."""

    def __init__(self, cfg, image_shape: tuple[int, int, int], text_dim: int,
                 two_times: bool = False):
        super().__init__()
        C, H, W = image_shape
        p = cfg.patch_size
        if H % p or W % p:
            raise ValueError(f"patch_size {p} does not divide the {H}x{W} image")
        if cfg.width % cfg.num_heads or cfg.width % 4:
            raise ValueError(f"width {cfg.width} must be divisible by 4 and by heads {cfg.num_heads}")
        D = cfg.width
        self.image_shape = image_shape
        self.p = p
        self.grid = (H // p, W // p)
        self.patch = nn.Linear(C * p * p, D)
        self.register_buffer("pos", sincos_2d(D, *self.grid)[None], persistent=False)  # (1, N, D)
        self.t_freq = 256
        self.t_embed = MLP(self.t_freq, D, D, nn.SiLU())
        self.h_embed = MLP(self.t_freq, D, D, nn.SiLU()) if two_times else None
        self.text_proj = nn.Linear(text_dim, D)
        self.text_positions = cfg.text_positions or cfg.text_layers > 0  # attention needs the order
        self.text_layers = nn.ModuleList(TextLayer(D, cfg.num_heads, cfg.mlp_ratio)
                                         for _ in range(cfg.text_layers))
        # The pooled text, projected into the conditioning (model.pooled_text).
        self.text_pool = Modulation(D, 1) if cfg.pooled_text else None
        if cfg.attention not in ("softmax", "linear"):
            raise ValueError(f"unknown attention {cfg.attention!r}; one of ['linear', 'softmax']")
        self.joint = cfg.text_attention == "joint"
        self.blocks = nn.ModuleList(Block(D, cfg.num_heads, cfg.mlp_ratio, cfg.attention == "linear",
                                          self.joint) for _ in range(cfg.depth))
        self.text_blocks = (nn.ModuleList(TextMLP(D, cfg.mlp_ratio) for _ in range(cfg.depth))
                            if cfg.text_stream else None)
        self.final_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_ada = Modulation(D, 2)
        self.out = nn.Linear(D, C * p * p)
        self.initialize_weights()

    def initialize_weights(self):
        def xavier(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.apply(xavier)
        # Time MLP: small normal init as in DiT, so early embeddings stay O(1).
        for layer in (self.t_embed.fc1, self.t_embed.fc2):
            nn.init.normal_(layer.weight, std=0.02)
        if self.h_embed is not None:
            # Zero output: the interval changes nothing at first, so a flow checkpoint loaded
            # into a two-time model predicts its own velocity for every interval.
            nn.init.normal_(self.h_embed.fc1.weight, std=0.02)
            nn.init.zeros_(self.h_embed.fc2.weight)
        for block in self.blocks:
            # adaLN-Zero: zero modulation makes every gate 0, so each block starts as the
            # identity and the network as a function of the patch embedding alone.
            nn.init.zeros_(block.ada.proj.weight)
            nn.init.zeros_(block.ada.proj.bias)
        # The text stream and the refiner start as the identity: their residual branches add 0.
        for text_mlp in (*(self.text_blocks or ()), *(layer.mlp for layer in self.text_layers)):
            nn.init.zeros_(text_mlp.mlp.fc2.weight)
        for layer in self.text_layers:
            nn.init.zeros_(layer.attn.proj.weight)
        # Zero final modulation and output layer: the untrained model predicts exactly 0, a
        # harmless start for any objective (DiT section 3.2).
        nn.init.zeros_(self.final_ada.proj.weight)
        nn.init.zeros_(self.final_ada.proj.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p, (h, w) = self.p, self.grid
        x = x.reshape(B, C, h, p, w, p).permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, p, p)
        return x.reshape(B, h * w, C * p * p)  # (B, N, C*p*p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        C = self.image_shape[0]
        p, (h, w) = self.p, self.grid
        x = x.reshape(B, h, w, C, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, h, p, w, p)
        return x.reshape(B, C, h * p, w * p)  # (B, C, H, W)

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        h = self.patch(self.patchify(x)) + self.pos  # (B, N, D)
        context = self.text_proj(tokens)  # (B, L, D)
        if self.text_positions:  # each token's place in the prompt, explicitly
            context = context + sincos_1d(context.shape[-1], context.shape[1]).to(context)[None]
        for layer in self.text_layers:
            context = layer(context, mask)
        c = self.t_embed(timestep_embedding(t, self.t_freq).to(h.dtype))
        if self.text_pool is not None:
            weights = mask.to(context.dtype)[..., None]  # (B, L, 1)
            pooled = (context * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D)
            c = c + self.text_pool(pooled)
        if self.h_embed is not None:
            c = c + self.h_embed(timestep_embedding(interval(t, s), self.t_freq).to(h.dtype))
        elif s is not None:
            raise ValueError("this backbone was built for one time; few-step objectives need two_times")
        n = h.shape[1]
        if self.joint:  # one sequence: the image tokens, then the text's; padding is never read
            h = torch.cat([h, context], 1)
            mask = torch.cat([mask.new_ones(len(mask), n), mask], 1)
        for i, block in enumerate(self.blocks):
            if self.text_blocks is not None:
                context = self.text_blocks[i](context)
            h = block(h, c, context, mask)
        h = h[:, :n]
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        h = self.out(modulate(self.final_norm(h), shift, scale))  # (B, N, C*p*p)
        return self.unpatchify(h)
