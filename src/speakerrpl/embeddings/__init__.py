"""Embedding sets, batch extraction from audio, and the content-addressed embedding cache."""

from speakerrpl.embeddings.cache import EmbeddingCache, default_cache_dir, file_sha256
from speakerrpl.embeddings.extraction import Failure, extract_embeddings
from speakerrpl.embeddings.set import EmbeddingSet

__all__ = [
    "EmbeddingCache",
    "EmbeddingSet",
    "Failure",
    "default_cache_dir",
    "extract_embeddings",
    "file_sha256",
]
