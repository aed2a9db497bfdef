"""The decoder-only Transformer: a Llama-style GPT (RMSNorm, RoPE, SwiGLU, optional GQA) plus its KV cache.

Parameterization follows Llama (Touvron et al. 2023) so weights map one-to-one onto Hugging Face
`LlamaForCausalLM` / `Qwen2ForCausalLM` (see `hf.py`); q/k/v and gate/up are stored fused for speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from emergelab.errors import UserError


@dataclass
class ModelConfig:
    vocab_size: int = 256
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_kv_head: int | None = None  # None = n_head (plain multi-head); fewer = grouped-query attention
    ffn_hidden: int | None = None  # None = int(8 * n_embd / 3) rounded up to a multiple of 16 (Llama rule)
    block_size: int = 256  # longest sequence (also the RoPE table length)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False  # share the token embedding with the output head
    attn_bias: bool = False  # biases on q/k/v projections (Qwen2); every other layer has no bias
    use_mlp: bool = True  # False = attention-only Transformer (induction-head experiments)

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden(self) -> int:
        """SwiGLU hidden width. 8C/3 keeps the parameter count of a 4C GELU MLP (Shazeer 2020)."""
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        return -(-int(8 * self.n_embd / 3) // 16) * 16

    def validate(self) -> ModelConfig:
        """Raise UserError naming the first bad field; return self so calls can be chained."""
        for name in ("vocab_size", "n_layer", "n_embd", "n_head", "block_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise UserError(f"model.{name}: {v!r} is not a positive integer — set it to an integer >= 1")
        for name in ("n_kv_head", "ffn_hidden"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise UserError(f"model.{name}: {v!r} must be a positive integer or null")
        for name in ("rope_theta", "norm_eps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise UserError(f"model.{name}: {v!r} must be a positive number")
        for name in ("tie_embeddings", "attn_bias", "use_mlp"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"model.{name}: {getattr(self, name)!r} must be true or false")
        if self.n_embd % self.n_head:
            raise UserError(f"model.n_embd: {self.n_embd} is not divisible by model.n_head={self.n_head} "
                            "— choose n_embd a multiple of n_head")
        if self.n_head % self.kv_heads:
            raise UserError(f"model.n_kv_head: model.n_head={self.n_head} is not divisible by "
                            f"n_kv_head={self.kv_heads} — choose n_kv_head dividing n_head (or null)")
        if self.head_dim % 2:
            raise UserError(f"model.n_head: head_dim = n_embd/n_head = {self.head_dim} is odd, RoPE needs it "
                            "even — choose n_embd/n_head even")
        return self


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None
    attentions: list[torch.Tensor] | None = None  # per layer (B, H, T, S)
    hidden_states: list[torch.Tensor] | None = None  # embeddings, then the residual after each block


class KVCache:
    """Preallocated keys/values for incremental decoding: per layer a (B, n_kv_head, max_len, head_dim) pair.

    `pad_lens` (B,) marks left padding: row b's first pad_lens[b] slots are padding that no query attends
    to, and its positions (RoPE) start at 0 after the padding, so a left-padded row computes exactly what
    the same prompt alone would.
    """

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32,
                 pad_lens: torch.Tensor | None = None):
        shape = (batch, cfg.kv_heads, max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.pos = 0  # number of positions already stored
        self.pad_lens = pad_lens

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's (B, Hkv, T, D) keys/values at self.pos; return all keys/values so far."""
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def repeat_interleave(self, n: int) -> KVCache:
        """Each row repeated n times (row-major), e.g. to share one prefill across n samples."""
        out = KVCache.__new__(KVCache)
        out.k = [t.repeat_interleave(n, dim=0) for t in self.k]
        out.v = [t.repeat_interleave(n, dim=0) for t in self.v]
        out.pos = self.pos
        out.pad_lens = None if self.pad_lens is None else self.pad_lens.repeat_interleave(n)
        return out

    def select(self, rows: torch.Tensor) -> None:
        """Keep only `rows` (e.g. the unfinished sequences), in place. Only the filled columns are copied:
        compacting the whole preallocated cache was 21% of a GRPO rollout."""
        def pick(t: torch.Tensor) -> torch.Tensor:
            new = t.new_empty((len(rows),) + t.shape[1:])
            torch.index_select(t[:, :, :self.pos], 0, rows, out=new[:, :, :self.pos])
            return new
        self.k = [pick(t) for t in self.k]
        self.v = [pick(t) for t in self.v]
        if self.pad_lens is not None:
            self.pad_lens = self.pad_lens.index_select(0, rows)


def rope(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """RoPE (Su et al. 2021) in the Llama/HF convention, where the pairs rotated together are (i, i + D/2):
    x·cos + rotate_half(x)·sin with rotate_half(x) = (−x2, x1). Rolling x by D/2 gives (x2, x1), and the
    sign sits in the table (sin_signed = (−sin, sin)), so no chunk/neg/cat — bit-identical to the
    textbook form, since IEEE multiplication is exact under negation."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin_signed


DOC_BLOCK = 32  # query rows per attention call under document masking (fastest of 32/64/256 at T=256, 1 thread)


def doc_mask_blocks(doc_ids: torch.Tensor, first: torch.Tensor, size: int = DOC_BLOCK
                    ) -> list[tuple[int, int, int, torch.Tensor]]:
    """Document-masked causal attention as query blocks [a, b) that read keys [lo, b) only.

    A query attends to keys of its own document, which starts at `first` (B, T); keys before the
    earliest document start of a block's first query (over the batch) are masked for every row of the
    block, so they are left out of the call rather than computed and discarded. Each block carries its
    (B, 1, b − a, b − lo) mask. With packed documents much shorter than the row, attention's cost falls
    from T² towards T × (longest document) — 2–3× less forward+backward time at T=256 (width 16, 4 heads).
    """
    B, T = doc_ids.shape
    t = torch.arange(T, device=doc_ids.device)
    lows = first[:, ::size].min(dim=0).values.tolist()
    blocks = []
    for a, lo in zip(range(0, T, size), lows):
        b = min(T, a + size)
        m = (t[None, lo:b] <= t[a:b, None]) & (doc_ids[:, a:b, None] == doc_ids[:, None, lo:b])
        blocks.append((a, b, lo, m[:, None]))
    return blocks


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv, self.hd = cfg.n_head, cfg.kv_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.n_embd, (self.n_head + 2 * self.n_kv) * self.hd, bias=cfg.attn_bias)
        self.proj = nn.Linear(self.n_head * self.hd, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin, mask, is_causal, cache, layer, return_attention):
        B, T, _ = x.shape
        H, Hkv = self.n_head, self.n_kv
        # split (not slicing) so that backward assembles the fused gradient with one cat
        qk, v = self.qkv(x).view(B, T, H + 2 * Hkv, self.hd).split([H + Hkv, Hkv], dim=2)
        qk = rope(qk, cos, sin)  # on q and k together
        q, k = qk.split([H, Hkv], dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if return_attention:
            kr, vr = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
            scores = (q @ kr.transpose(-2, -1)) / math.sqrt(self.hd)
            if is_causal:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            att = scores.float().softmax(-1).to(q.dtype)
            y = att @ vr
        elif isinstance(mask, list):  # document masking in query blocks (see `doc_mask_blocks`)
            att = None
            y = torch.cat([F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, lo:b], v[:, :, lo:b], attn_mask=m,
                                                          enable_gqa=H != Hkv) for a, b, lo, m in mask], dim=2)
        else:
            att = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                               enable_gqa=H != Hkv)
        return self.proj(y.transpose(1, 2).reshape(B, T, H * self.hd)), att


    def decode(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, bias: torch.Tensor | None,
               cache: KVCache, layer: int) -> torch.Tensor:
        """One new token per row, x (B, C): plain q·Kᵀ → softmax → ·V over the filled cache columns. For a
        single query this beats the fused attention kernel, whose fixed cost dominates at decode sizes."""
        B = x.shape[0]
        H, Hkv, D = self.n_head, self.n_kv, self.hd
        qk, v = self.qkv(x).view(B, H + 2 * Hkv, D).split([H + Hkv, Hkv], dim=1)
        qk = rope(qk, cos, sin)
        pos = cache.pos
        cache.k[layer][:, :, pos] = qk[:, H:]
        cache.v[layer][:, :, pos] = v
        keys, values = cache.k[layer][:, :, :pos + 1], cache.v[layer][:, :, :pos + 1]  # (B, Hkv, S, D)
        q = qk[:, :H].reshape(B, Hkv, H // Hkv, D) * (1.0 / math.sqrt(D))  # query head h reads kv head h // g
        scores = q @ keys.transpose(-2, -1)  # (B, Hkv, g, S)
        if bias is not None:
            scores = scores + bias
        y = scores.softmax(-1) @ values  # (B, Hkv, g, D)
        return self.proj(y.reshape(B, H * D))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)) (Shazeer 2020), gate and up fused into one matmul."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_up = nn.Linear(cfg.n_embd, 2 * cfg.hidden, bias=False)
        self.down = nn.Linear(cfg.hidden, cfg.n_embd, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        if cfg.use_mlp:
            self.mlp_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
            self.mlp = SwiGLU(cfg)
        self.use_mlp = cfg.use_mlp

    def forward(self, x, cos, sin, mask, is_causal, cache, layer, return_attention):
        a, att = self.attn(self.attn_norm(x), cos, sin, mask, is_causal, cache, layer, return_attention)
        x = x + a
        if self.use_mlp:
            x = x + self.mlp(self.mlp_norm(x))
        return x, att

    def decode(self, x, cos, sin, bias, cache, layer):
        x = x + self.attn.decode(self.attn_norm(x), cos, sin, bias, cache, layer)
        if self.use_mlp:
            x = x + self.mlp(self.mlp_norm(x))
        return x


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        # RoPE tables (Llama convention, float32 like HF): angle[p, i] = p * theta^(-2i/D), halves duplicated.
        D = cfg.head_dim
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.float) / D))
        angles = torch.arange(cfg.block_size, dtype=torch.float)[:, None] * inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        sign = torch.cat((-torch.ones(D // 2), torch.ones(D // 2)))
        self.register_buffer("rope_cos", angles.cos(), persistent=False)
        self.register_buffer("rope_sin", angles.sin() * sign, persistent=False)  # signed, see `rope`
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # GPT-2 init: N(0, 0.02) for every matrix; the two projections that write into the residual stream
        # (attention out, MLP down) get std 0.02/sqrt(2*n_layer) so the residual variance stays O(1) with
        # depth (Radford et al. 2019, sec. 2.3). Norm gains 1, biases 0.
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p) if "norm" in name else nn.init.zeros_(p)
            elif name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.cfg.n_layer))
            else:
                nn.init.normal_(p, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count; non_embedding drops the token-embedding and output-head matrices (Kaplan 2020)."""
        n = sum(p.numel() for p in self.parameters())  # tied weights are counted once
        if non_embedding:
            n -= self.tok_emb.weight.numel()
            if not self.cfg.tie_embeddings:
                n -= self.lm_head.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: 6N + 12*L*C*T (Kaplan et al. 2020 sec. 2.1; PaLM appendix B).

        N counts the weights that take part in a matmul: the non-embedding parameters plus the output head
        (V*C, even when tied); the input-embedding lookup is free. 12*L*C*T is the attention score and
        value product (2*L*C*T forward, x3 for backward) at context T (default block_size; a causal mask
        would halve it, which we do not credit, as PaLM).
        """
        c = self.cfg
        n = self.num_params(non_embedding=True) + c.vocab_size * c.n_embd
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * (seq_len or c.block_size)

    def _rope_at(self, rope_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin (B, T, 1, D) for per-row positions rope_pos (B, T)."""
        return self.rope_cos[rope_pos][:, :, None, :], self.rope_sin[rope_pos][:, :, None, :]

    def decode_step(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (B, V) of the next token after one new token per row, idx (B,), continuing `cache`.

        The generation hot loop: no masks beyond the left padding, no RoPE gather when unpadded, the
        output head on one position. Same numbers as `forward` up to float reassociation (tests).
        """
        pos = cache.pos
        if pos + 1 > cache.k[0].shape[2] or pos + 1 > self.cfg.block_size:
            raise UserError(f"sequence length {pos + 1} exceeds model.block_size={self.cfg.block_size} "
                            "(or the cache) — shorten the input or train with a larger block_size")
        bias = None
        if cache.pad_lens is None:
            cos, sin = self.rope_cos[pos], self.rope_sin[pos]  # (D,)
        else:
            rope_pos = (pos - cache.pad_lens).clamp(min=0)
            cos, sin = self.rope_cos[rope_pos][:, None], self.rope_sin[rope_pos][:, None]  # (B, 1, D)
            k_pos = torch.arange(pos + 1, device=idx.device)
            bias = torch.zeros(idx.shape[0], 1, 1, pos + 1, device=idx.device, dtype=cos.dtype)
            bias.masked_fill_(k_pos < cache.pad_lens[:, None, None, None], float("-inf"))
        dt = self.tok_emb.weight.dtype
        cos, sin = cos.to(dt), sin.to(dt)
        bias = None if bias is None else bias.to(dt)
        x = self.tok_emb(idx)
        for i, block in enumerate(self.blocks):
            x = block.decode(x, cos, sin, bias, cache, i)
        cache.pos = pos + 1
        return self.lm_head(self.norm(x))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None, return_attention: bool = False,
                return_hidden: bool = False, cache: KVCache | None = None,
                pad_lens: torch.Tensor | None = None, last_logits_only: bool = False,
                doc_ids: torch.Tensor | None = None, logits_from: int = 0,
                logits_at: torch.Tensor | None = None) -> ModelOutput:
        """idx (B, T) token ids. targets (B, T) with -100 = ignore; loss_mask (B, T) bool, False = ignore.

        `doc_ids` (B, T) non-decreasing document numbers of packed rows: a token attends only to earlier
        tokens of its own document and positions (RoPE) restart at 0 where a document starts, so each
        document computes exactly what it would alone in a row (document masking, as Llama 3 trains).

        With `cache`, idx continues the cached sequence (positions start at cache.pos). `pad_lens` (B,)
        = number of left-padding tokens per row (taken from the cache when it has them).
        `last_logits_only` computes logits (B, 1, V) for the last position only (generation prefill);
        `logits_from` = k computes them for positions k.. only, (B, T-k, V) — with a large vocabulary the
        output head dominates, and RL scores no prompt position. `logits_at` (B, T) bool computes them only
        where it is True, as (N, V) in row-major order — e.g. `targets != -100` under an answer-only loss,
        where the output head and the cross-entropy at unscored positions would be thrown away.
        """
        B, T = idx.shape
        if (T == 1 and cache is not None and targets is None and doc_ids is None and pad_lens is None
                and not (return_attention or return_hidden)):
            return ModelOutput(logits=self.decode_step(idx[:, 0], cache)[:, None])
        pos = cache.pos if cache is not None else 0
        if cache is not None and cache.pad_lens is not None:
            pad_lens = cache.pad_lens
        if pos + T > self.cfg.block_size:
            raise UserError(f"sequence length {pos + T} exceeds model.block_size={self.cfg.block_size} "
                            "— shorten the input or train with a larger block_size")
        dev = idx.device
        S = pos + T
        if doc_ids is not None:
            if cache is not None or pad_lens is not None:
                raise ValueError("doc_ids is for training on packed rows; it cannot be combined with a cache")
            t = torch.arange(T, device=dev)
            starts = torch.ones_like(doc_ids, dtype=torch.bool)
            starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
            first = torch.where(starts, t, 0).cummax(dim=1).values  # index where each token's document starts
            rope_pos = t - first  # (B, T)
            cos, sin = self._rope_at(rope_pos)
            if return_attention:
                mask = (t[None, :] <= t[:, None]) & (doc_ids[:, :, None] == doc_ids[:, None, :])
                mask = mask[:, None]  # (B, 1, T, T)
            else:
                mask = doc_mask_blocks(doc_ids, first)
            is_causal = False
        elif pad_lens is None:
            cos, sin = self.rope_cos[pos:S, None, :], self.rope_sin[pos:S, None, :]  # (T, 1, D)
            mask, is_causal = None, T > 1 and pos == 0  # one-token decode steps see every key: no mask
            if T > 1 and pos > 0:
                mask = torch.ones(T, S, dtype=torch.bool, device=dev).tril(diagonal=pos)
        else:
            q_pos = torch.arange(pos, S, device=dev)
            rope_pos = (q_pos[None, :] - pad_lens[:, None]).clamp(min=0)  # (B, T)
            cos, sin = self._rope_at(rope_pos)
            k_pos = torch.arange(S, device=dev)
            causal = k_pos[None, :] <= q_pos[:, None]  # (T, S)
            # padding keys are hidden; a padding query sees only itself so its softmax stays finite
            mask = (causal & (k_pos[None, None, :] >= pad_lens[:, None, None])) | (k_pos == q_pos[:, None])
            mask, is_causal = mask[:, None], False  # (B, 1, T, S)
        cos, sin = cos.to(self.tok_emb.weight.dtype), sin.to(self.tok_emb.weight.dtype)

        x = self.tok_emb(idx)
        hidden = [x] if return_hidden else None
        attentions = [] if return_attention else None
        for i, block in enumerate(self.blocks):
            x, att = block(x, cos, sin, mask, is_causal, cache, i, return_attention)
            if return_hidden:
                hidden.append(x)
            if return_attention:
                attentions.append(att)
        if cache is not None:
            cache.pos = S
        if logits_at is not None:
            if targets is not None:
                raise ValueError("logits_at: compute the loss from the returned (N, V) logits")
            return ModelOutput(logits=self.lm_head(self.norm(x[logits_at])), attentions=attentions,
                               hidden_states=hidden)
        logits = self.lm_head(self.norm(x[:, -1:] if last_logits_only else x[:, logits_from:]))

        loss = None
        if targets is not None:
            targets = targets[:, logits_from:]
            if loss_mask is not None:
                loss_mask = loss_mask[:, logits_from:]
                targets = targets.masked_fill(~loss_mask.bool(), -100)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=-100)
        return ModelOutput(logits=logits, loss=loss, attentions=attentions, hidden_states=hidden)
