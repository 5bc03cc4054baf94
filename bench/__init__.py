"""Benchmarks behind ``rag bench query|index|scale|load``.

Each benchmark returns one dict of figures (medians over repeated runs, with the
baseline measured in the same run), prints it, and appends a dated row to
``bench/RESULTS.md`` with the machine's cores and the exact command.
"""
