"""The distributed vector backend: Milvus through ``pymilvus``.

With no URI a generation keeps its vectors in its own Milvus Lite file (``dense.milvus.db``,
the Milvus C++ engine embedded in a child process); with ``RAG_MILVUS_URI`` each generation
is the collection ``<RAG_MILVUS_COLLECTION>_<generation>`` on that server or cluster, so the
atomic ``current`` switch of the index folder also switches collections, and the replicas of
a cluster serve every API process at once.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ConfigError, DependencyMissingError
from index.vectors import EXACT_UP_TO, VectorConfig, calibrate_nprobe, ivf_lists

log = logging.getLogger(__name__)
LITE_FILE = "dense.milvus.db"
# milvus-lite inserts slow down sharply with batch size (10k rows: 95 s, 1k rows: 0.1 s here)
INSERT_ROWS = 1_000
LITE_START_S = 60.0
FIELD = "vector"
INSTALL = "pip install 'rag-news-qa[milvus]' (pymilvus and milvus-lite)"


def _client(uri: str, token: str) -> Any:
    # milvus-lite 2.5 imports pkg_resources, which warns on every start of the CLI
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import ConnectionConfigException, MilvusException
    except ImportError as exc:
        raise DependencyMissingError(f"the milvus vector backend needs {INSTALL}") from exc
    # An embedded Lite engine is a child process that may take a while to open its socket
    # on a busy machine; each retry reuses the engine already started.
    deadline = time.monotonic() + (LITE_START_S if uri.endswith(".db") else 0)
    while True:
        try:
            return MilvusClient(uri=uri, token=token)
        except ConnectionConfigException as exc:  # e.g. the Lite file is held elsewhere
            failure: MilvusException = exc
        except MilvusException as exc:
            failure = exc
            if time.monotonic() < deadline:
                time.sleep(1.0)
                continue
        hint = (
            "a Milvus Lite file serves one process at a time: point RAG_MILVUS_URI at a Milvus "
            "server for several workers"
            if uri.endswith(".db")
            else "check RAG_MILVUS_URI and RAG_MILVUS_TOKEN"
        )
        raise ConfigError(f"cannot open Milvus at {uri}: {failure}; {hint}") from failure


def _release(uri: str) -> None:
    """Stop the embedded Milvus Lite process of a file so another process may open it."""
    if not uri.endswith(".db"):
        return
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)


def choose_index(n: int, wanted: str) -> tuple[str, dict[str, Any]]:
    """Milvus index type and build parameters for ``n`` vectors (``auto`` follows FAISS)."""
    kind = wanted.upper()
    if kind == "AUTO":
        kind = "FLAT" if n <= EXACT_UP_TO else "IVF_FLAT"
    if kind.startswith("IVF"):
        return kind, {"nlist": ivf_lists(n)}
    if kind == "HNSW":
        return kind, {"M": 16, "efConstruction": 200}
    return kind, {}


def _search_params(index_type: str, nprobe: int, k: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if index_type.startswith("IVF"):
        params["nprobe"] = nprobe or 16
    elif index_type == "HNSW":
        params["ef"] = max(k, 128)
    return {"metric_type": "IP", "params": params}


def write_milvus(
    config: VectorConfig, gen_dir: Path, name: str, vectors: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    """Create, fill, index and load the generation's collection; returns manifest fields."""
    from pymilvus import DataType

    lite = not config.milvus_uri
    uri = str(gen_dir / LITE_FILE) if lite else config.milvus_uri
    collection = (
        config.milvus_collection
        if lite
        else f"{config.milvus_collection}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"
    )
    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384
    index_type, index_params = choose_index(len(vectors), config.milvus_index)
    client = _client(uri, config.milvus_token)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(FIELD, DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index(
            field_name=FIELD, index_type=index_type, metric_type="IP", params=index_params
        )
        client.create_collection(
            collection,
            schema=schema,
            index_params=index,
            num_shards=config.milvus_shards,
            consistency_level="Strong",
        )
        for i in range(0, len(vectors), INSERT_ROWS):
            rows = vectors[i : i + INSERT_ROWS]
            client.insert(
                collection,
                [
                    {"id": int(j), FIELD: v}
                    for j, v in zip(ids[i : i + INSERT_ROWS], rows.tolist(), strict=True)
                ],
            )
        client.flush(collection)
        _load(client, collection, config.milvus_replicas)
        nprobe = config.nprobe
        if index_type.startswith("IVF") and not nprobe and len(vectors):

            def search(queries: np.ndarray, k: int, probe: int) -> np.ndarray:
                return _search(client, collection, queries, k, index_type, probe)[1]

            nprobe, recall = calibrate_nprobe(search, vectors, index_params["nlist"])
            log.info("milvus nprobe %d gives recall@10 %.3f on a sample", nprobe, recall)
    finally:
        client.close()
        if lite:
            _release(uri)
    return {
        "vector_backend": "milvus",
        "milvus_uri": "" if lite else uri,
        "milvus_collection": collection,
        "milvus_index": index_type,
        "milvus_shards": config.milvus_shards,
        "nprobe": nprobe if index_type.startswith("IVF") else 0,
    }


def _load(client: Any, collection: str, replicas: int) -> None:
    if replicas > 1:
        client.load_collection(collection, replica_number=replicas)
    else:
        client.load_collection(collection)


def _search(
    client: Any, collection: str, queries: np.ndarray, k: int, index_type: str, nprobe: int
) -> tuple[np.ndarray, np.ndarray]:
    found = client.search(
        collection,
        data=np.asarray(queries, dtype=np.float32).tolist(),
        limit=k,
        anns_field=FIELD,
        output_fields=["id"],
        search_params=_search_params(index_type, nprobe, k),
    )
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    for row, hits in enumerate(found):
        for col, hit in enumerate(list(hits)[:k]):
            scores[row, col] = float(hit["distance"])
            ids[row, col] = int(hit["id"])
    return scores, ids


class MilvusVectors:
    """A generation's collection, searched through one client (thread-safe gRPC)."""

    backend = "milvus"

    def __init__(self, uri: str, token: str, collection: str, index_type: str, nprobe: int):
        """Connect and load the collection."""
        self.uri = uri
        self.collection = collection
        self.index_type = index_type
        self.nprobe = nprobe
        self._client = _client(uri, token)
        if not self._client.has_collection(collection):
            self._client.close()
            raise ConfigError(
                f"Milvus at {uri} has no collection {collection!r}: rebuild the index with "
                "`rag index --rebuild`"
            )
        self._client.load_collection(collection)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product top ``k`` per query."""
        return _search(self._client, self.collection, queries, k, self.index_type, self.nprobe)

    def count(self) -> int:
        """How many vectors are stored (the collection's row count)."""
        return int(self._client.get_collection_stats(self.collection)["row_count"])

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Upsert vectors under their ids (a change replayed twice is stored once)."""
        for i in range(0, len(vectors), INSERT_ROWS):
            rows = np.asarray(vectors[i : i + INSERT_ROWS], dtype=np.float32).tolist()
            self._client.upsert(
                self.collection,
                [
                    {"id": int(j), FIELD: v}
                    for j, v in zip(ids[i : i + INSERT_ROWS], rows, strict=True)
                ],
            )

    def remove(self, ids: np.ndarray) -> None:
        """Delete the vectors of these ids (unknown ids are ignored)."""
        if len(ids):
            self._client.delete(self.collection, ids=[int(i) for i in ids])

    def close(self) -> None:
        """Close the connection (and stop an embedded Lite process)."""
        self._client.close()
        _release(self.uri)


def open_milvus(gen_dir: Path, manifest: dict[str, Any], config: VectorConfig) -> MilvusVectors:
    """Open the collection a manifest names; a configured URI overrides the recorded one."""
    recorded = manifest.get("milvus_uri", "")
    uri = (config.milvus_uri or recorded) if recorded else str(gen_dir / LITE_FILE)
    return MilvusVectors(
        uri,
        config.milvus_token,
        manifest["milvus_collection"],
        manifest.get("milvus_index", "FLAT"),
        int(manifest.get("nprobe") or 0),
    )


def drop_milvus(manifest: dict[str, Any], config: VectorConfig) -> None:
    """Drop a pruned generation's collection from the server (a failure is only logged)."""
    uri = config.milvus_uri or manifest["milvus_uri"]
    try:
        client = _client(uri, config.milvus_token)
    except ConfigError as exc:
        log.warning("could not drop an old collection: %s", exc)
        return
    try:
        if client.has_collection(manifest["milvus_collection"]):
            client.drop_collection(manifest["milvus_collection"])
    finally:
        client.close()
