"""Error hierarchy shared by the write path and the read path.

Every error a user can cause derives from :class:`RagError`; its message says what
went wrong and how to fix it. The CLI and the HTTP layer map these classes (and only
these) to exit codes and status codes.
"""


class RagError(Exception):
    """Base class of every error the service reports to a user."""

    status_code = 400
    kind = "rag_error"


class ConfigError(RagError):
    """A setting has a value that cannot work."""

    kind = "config_error"


class IndexMissingError(RagError):
    """No index has been built at the configured location."""

    status_code = 503
    kind = "index_missing"


class IndexMismatchError(RagError):
    """The index on disk was built with settings that differ from the configured ones."""

    status_code = 409
    kind = "index_mismatch"


class DocumentError(RagError):
    """A document cannot be read or is not acceptable."""

    kind = "document_error"


class DocumentNotFoundError(RagError):
    """A document id that is not in the index."""

    status_code = 404
    kind = "not_found"


class DependencyMissingError(RagError):
    """An optional dependency is not installed; the message gives the install command."""

    kind = "dependency_missing"
