"""Library import jobs: files too big to merge in the upload request."""
from __future__ import annotations

from app.services import library

from .context import with_app_context


@with_app_context
def run_library_import(import_id: int) -> str:
    """Merge queued import `import_id` into its DJ's library (all or nothing)."""
    return library.run_queued_import(import_id)
