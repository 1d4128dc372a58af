"""Library import jobs: big files are merged here rather than in the request.

The upload's bytes wait in their `library_imports` row; the job merges them
in one transaction (all or nothing), writes its progress to Redis for the
page's progress bar, and stores the report on the row. Safe to run twice: a
finished import is left alone, and one whose worker died before the commit
changed nothing, so it simply runs again.
"""
from __future__ import annotations

from .context import with_app_context


@with_app_context
def run_library_import(import_id: int) -> str:
    """Merge queued import `import_id` into its DJ's library; returns what happened."""
    from app.services.library import run_queued_import

    return run_queued_import(import_id)
