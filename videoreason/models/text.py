"""Prompt embeddings ``[B, L, dim]`` for the transformer's cross-attention, computed once and cached on disk.

- ``HashTextEmbedder(dim, max_tokens)``: deterministic, parameter-free; words are hashed (blake2b, so stable across
  processes) into a fixed random table. For tiny models.
- ``UMT5Embedder(path)``: ``UMT5EncoderModel`` + tokenizer from a local folder, embedded as diffusers'
  ``WanPipeline`` does (prompt cleaned as the pipeline does, last hidden state, cut at the prompt's length, zero
  padded to ``max_tokens``).

Both share ``TextEmbedder.embed``: with a ``cache_dir``, each prompt's ``[L, dim]`` embedding is stored as
``<sha1(cache_id, max_tokens, prompt)>.safetensors`` and read back on later calls; ``UMT5Embedder`` frees its encoder
after filling the cache (it reloads lazily if a new prompt ever comes). ``TextEmbedder.precompute(prompts)`` embeds
a known set of prompts once (into the disk cache, or into memory without one) and then frees the encoder: the phases
call it at fit start with every training and validation prompt, so training never holds the encoder.
"""

from __future__ import annotations

import abc
import gc
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from videoreason.models.local import component_folder
from videoreason.models.recorded import RecordsConfig, absolute


class TextEmbedder(RecordsConfig, abc.ABC):
    """Base of prompt embedders: ``embed(prompts) -> float32 [B, max_tokens, dim]`` with an optional disk cache.
    ``config()`` gives the ``class_path`` + ``init_args`` that rebuild it (how exports record the embedder).

    Args:
        max_tokens: Sequence length ``L`` of every embedding (zero padded).
        cache_dir: Folder of cached embeddings; ``None`` disables the cache.
    """

    def __init__(self, max_tokens: int, cache_dir: str | None = None) -> None:
        if max_tokens < 1:
            raise ValueError(f"`max_tokens` must be >= 1, got {max_tokens}")
        self.max_tokens = int(max_tokens)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self._memory: dict[str, torch.Tensor] = {}  # precomputed without a cache_dir: prompt -> [L, dim]

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Embedding width (the transformer's ``text_dim``)."""

    @property
    @abc.abstractmethod
    def cache_id(self) -> str:
        """String identifying the model; part of the cache key."""

    @abc.abstractmethod
    def _embed(self, prompts: list[str]) -> torch.Tensor:
        """Embed uncached prompts to float32 ``[B, max_tokens, dim]`` on CPU."""

    def release(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Free heavy resources (the encoder); a later ``embed`` may reload them."""

    def cache_key(self, prompt: str) -> str:
        """sha1 hex digest of ``cache_id``, ``max_tokens`` and ``prompt``."""
        return hashlib.sha1(f"{self.cache_id}\n{self.max_tokens}\n{prompt}".encode()).hexdigest()

    def cache_path(self, prompt: str) -> Path | None:
        """File of ``prompt``'s cached embedding, ``None`` without a cache."""
        return None if self.cache_dir is None else self.cache_dir / f"{self.cache_key(prompt)}.safetensors"

    @torch.no_grad()
    def embed(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Embeddings of ``prompts``, from the cache where present.

        Args:
            prompts: One prompt or a sequence of them.

        Returns:
            float32 ``[B, max_tokens, dim]`` on CPU.
        """
        from safetensors.torch import load_file

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if self.cache_dir is None and not self._memory:
            return self._embed(prompts).float()
        out = {p: self._memory[p] for p in dict.fromkeys(prompts) if p in self._memory}
        for prompt in dict.fromkeys(prompts):
            path = self.cache_path(prompt)
            if prompt not in out and path is not None and path.is_file():
                out[prompt] = load_file(str(path))["embeds"]  # [L, dim]
        missing = [p for p in dict.fromkeys(prompts) if p not in out]
        if missing:
            fresh = self._embed(missing).float().cpu()  # [M, L, dim]
            out.update(zip(missing, fresh, strict=True))
            if self.cache_dir is not None:
                self._save(missing, fresh)
                self.release()
        return torch.stack([out[p] for p in prompts])  # [B, L, dim]

    def _save(self, prompts: list[str], embeds: torch.Tensor) -> None:
        """Write ``embeds [M, L, dim]`` of ``prompts`` to the disk cache, each file atomically."""
        from safetensors.torch import save_file

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for prompt, emb in zip(prompts, embeds, strict=True):
            path = self.cache_path(prompt)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            save_file({"embeds": emb.contiguous()}, str(tmp), metadata={"cache_id": self.cache_id})
            os.replace(tmp, path)  # atomic: concurrent ranks never read a half-written file

    @torch.no_grad()
    def precompute(self, prompts: Sequence[str], batch_size: int = 16) -> int:
        """Embed ``prompts`` once, then ``release()`` the encoder; later ``embed`` calls of them load nothing.

        With a ``cache_dir`` the embeddings go to the disk cache (prompts already there are skipped); without one
        they are kept in memory (``[max_tokens, dim]`` float32 each: 8 MiB per prompt for UMT5-XXL at 512 tokens, so
        give a ``cache_dir`` for datasets with many distinct prompts).

        Args:
            prompts: Prompts to embed (duplicates are embedded once).
            batch_size: Prompts per encoder call.

        Returns:
            Number of prompts that were embedded (not found in memory or on disk).
        """
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        todo = [p for p in dict.fromkeys(prompts) if p not in self._memory]
        if self.cache_dir is not None:
            todo = [p for p in todo if not self.cache_path(p).is_file()]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            fresh = self._embed(chunk).float().cpu()  # [M, L, dim]
            if self.cache_dir is None:
                self._memory.update(zip(chunk, fresh, strict=True))
            else:
                self._save(chunk, fresh)
        self.release()
        return len(todo)

    __call__ = embed


class HashTextEmbedder(TextEmbedder):
    """Deterministic small embedder: lower-cased words hashed into a fixed random table, zero padded.

    Token ``i`` of a prompt gets ``table[blake2b(word) % vocab_size]``, the table being a unit-variance ``randn``
    seeded by ``seed``; tokens past ``max_tokens`` are dropped and positions past the prompt are zero, as with UMT5
    in the Wan pipelines.

    Args:
        dim: Embedding width.
        max_tokens: Sequence length.
        vocab_size: Rows of the hash table.
        seed: Seed of the table.
        cache_dir: Optional disk cache (see ``TextEmbedder``).
    """

    def __init__(
        self, dim: int = 32, max_tokens: int = 32, vocab_size: int = 4096, seed: int = 0, cache_dir: str | None = None
    ) -> None:
        super().__init__(max_tokens=max_tokens, cache_dir=cache_dir)
        self._dim = int(dim)
        self.vocab_size = int(vocab_size)
        self.seed = int(seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.table = torch.randn(self.vocab_size, self._dim, generator=gen)  # [V, dim]
        self.init_args = {"dim": self._dim, "max_tokens": self.max_tokens, "vocab_size": self.vocab_size,
                          "seed": self.seed, "cache_dir": absolute(cache_dir)}

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def cache_id(self) -> str:
        return f"hash:dim={self._dim}:vocab={self.vocab_size}:seed={self.seed}"

    def token_ids(self, prompt: str) -> list[int]:
        """Hashed ids of the prompt's words (at most ``max_tokens``)."""
        words = re.findall(r"\w+|[^\w\s]", prompt.lower())[: self.max_tokens]
        return [
            int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") % self.vocab_size
            for w in words
        ]

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), self.max_tokens, self._dim)  # [B, L, dim]
        for i, prompt in enumerate(prompts):
            ids = self.token_ids(prompt)
            if ids:
                out[i, : len(ids)] = self.table[torch.tensor(ids)]
        return out


class UMT5Embedder(TextEmbedder):
    """UMT5 encoder + tokenizer from a local folder, embedded as diffusers' ``WanPipeline`` does.

    Args:
        path: A diffusers pipeline root (with ``text_encoder/`` and ``tokenizer/``) or a folder holding both the
            encoder's ``config.json`` and the tokenizer files.
        max_tokens: Sequence length (the Wan pipelines use 512).
        cache_dir: Optional disk cache; after filling it the encoder is freed.
        device: Device the encoder runs on; ``auto``: CUDA when available, else the CPU.
        dtype: Encoder weight dtype (embeddings come back float32).
        offload: Keep the encoder in CPU memory and move it to ``device`` only while encoding; ``release()`` then
            keeps it there instead of dropping it, so a prompt that was not precomputed costs a copy to the device,
            not a read from disk (UMT5-XXL: about 11 GB of host memory in bf16).
    """

    def __init__(
        self,
        path: str,
        max_tokens: int = 512,
        cache_dir: str | None = None,
        device: str = "auto",
        dtype: torch.dtype = torch.float32,
        offload: bool = False,
    ) -> None:
        super().__init__(max_tokens=max_tokens, cache_dir=cache_dir)
        self.offload = bool(offload)
        root = Path(path).expanduser()
        self.encoder_path = component_folder(root, "text_encoder", "UMT5 encoder")
        self.tokenizer_path = root / "tokenizer" if self.encoder_path != root else root
        self.path = str(root.resolve())
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        self.init_args = {"path": self.path, "max_tokens": self.max_tokens, "cache_dir": absolute(cache_dir),
                          "device": device, "dtype": str(dtype), "offload": self.offload}
        self.dtype = dtype
        self._encoder = None
        self._tokenizer = None
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            import json

            config = json.loads((self.encoder_path / "config.json").read_text())
            self._dim = int(config["d_model"])
        return self._dim

    @property
    def cache_id(self) -> str:
        return f"umt5:{self.path}:{self.dtype}:prompt_clean"  # the pipelines' clean-up runs before tokenizing

    def _load(self) -> None:
        from transformers import AutoTokenizer, UMT5EncoderModel

        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_path), local_files_only=True)
        if self._encoder is None:
            self._encoder = (
                UMT5EncoderModel.from_pretrained(str(self.encoder_path), torch_dtype=self.dtype, local_files_only=True,
                                                 use_safetensors=True)
                .to("cpu" if self.offload else self.device)
                .eval()
            )

    def release(self) -> None:
        """Move the encoder to CPU and drop it (keep it there with ``offload``), then free the CUDA cache; the
        tokenizer stays."""
        if self._encoder is not None:
            self._encoder.to("cpu")
            if not self.offload:
                self._encoder = None
                gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean  # the pipelines' own text clean-up (ftfy)

        self._load()
        tokens = self._tokenizer(
            [prompt_clean(p) for p in prompts],
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.device)  # [B, L]
        mask = tokens.attention_mask.to(self.device)  # [B, L]
        try:
            hidden = self._encoder.to(self.device)(ids, mask).last_hidden_state.float()  # [B, L, dim]
        finally:
            if self.offload:
                self._encoder.to("cpu")
        lengths = mask.gt(0).sum(dim=1)  # [B]
        out = torch.zeros_like(hidden)
        for i, n in enumerate(lengths.tolist()):
            out[i, :n] = hidden[i, :n]  # zero past the prompt, as WanPipeline._get_t5_prompt_embeds
        return out.cpu()
