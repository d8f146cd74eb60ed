"""The global store: layout, entry lookup (and, from the CLI issue on, installs, verify, gc)."""

from .layout import (
    ENTRY_FILE as ENTRY_FILE,
    Entry as Entry,
    entry_dir as entry_dir,
    envknit_home as envknit_home,
    find_entry as find_entry,
    iter_entries as iter_entries,
    read_entry as read_entry,
    store_root as store_root,
    supported_tags as supported_tags,
)
