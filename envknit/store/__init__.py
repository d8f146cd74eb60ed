"""The global store: layout and entry lookup here; ``install``, ``maintenance`` (verify, gc).

``paths`` maps a locked environment to its entries (library and CLI). The other modules
(``install``, ``maintenance``, ``projects``, ``shims``, ``_locking``) are imported by the CLI
only, so that reading the store from the library stays cheap.
"""

from .layout import (
    ENTRY_FILE as ENTRY_FILE,
    Entry as Entry,
    entry_dir as entry_dir,
    envknit_home as envknit_home,
    find_entry as find_entry,
    iter_entries as iter_entries,
    read_entry as read_entry,
    store_root as store_root,
    tag_ranks as tag_ranks,
)
