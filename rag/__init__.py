"""Read path: retrieve, fuse, extract, answer and cite."""

__all__ = ["Pipeline"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "Pipeline":
        from rag.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
