"""Write path: load -> clean -> split -> embed -> store."""

__all__ = ["build_index", "clean_document", "split_document", "make_embedder"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    import importlib

    where = {
        "build_index": "index.build",
        "clean_document": "index.clean",
        "split_document": "index.split",
        "make_embedder": "index.embed",
    }
    if name in where:
        return getattr(importlib.import_module(where[name]), name)
    raise AttributeError(name)
