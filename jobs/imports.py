"""Library import jobs: files too big to merge in the upload request, and the
reconciliation of imports whose worker died."""
from __future__ import annotations

from app.services import library

from .context import with_app_context


@with_app_context
def run_library_import(import_id: int) -> str:
    """Merge queued import `import_id` into its DJ's library (all or nothing)."""
    return library.run_queued_import(import_id)


@with_app_context
def reconcile_imports() -> dict[str, int]:
    """Every minute: imports with no live job are run again, or marked failed."""
    return library.reconcile_imports()
