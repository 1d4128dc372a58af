"""A DJ's library: file parsers (importers), the merge by artist and title,
imports with their reports and progress, track management (edit, bulk,
delete with undo), the in-memory search index, and fans' recent searches."""
from .importers import ACCEPTED_EXTENSIONS, MAX_FILE_BYTES, MAX_TRACKS, TrackRow, parse_library_file
from .imports import (
    import_library_file,
    latest_import,
    library_size,
    own_import,
    read_progress,
    reconcile_imports,
    record_progress,
    run_queued_import,
)
from .merge import LIBRARY_MAX_TRACKS, MergeReport, lock_library, merge_tracks, read_spotify_csv, track_keys
from .recent import recent_searches, remember_search
from .search import SearchParams, SearchResult, bump_library_version, clear_indexes, library_index, search

__all__ = ["ACCEPTED_EXTENSIONS", "LIBRARY_MAX_TRACKS", "MAX_FILE_BYTES", "MAX_TRACKS", "MergeReport",
           "SearchParams", "SearchResult", "TrackRow", "bump_library_version", "clear_indexes",
           "import_library_file", "latest_import", "library_index", "library_size", "lock_library",
           "merge_tracks", "own_import", "parse_library_file", "read_progress", "read_spotify_csv",
           "reconcile_imports", "record_progress", "recent_searches", "remember_search", "run_queued_import", "search", "track_keys"]
