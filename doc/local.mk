# doc/: documentation and the man page.
dist_man_MANS += doc/fa2.1
dist_doc_DATA += doc/algorithm.md
dist_doc_DATA += doc/api.md
dist_doc_DATA += doc/NOTES.md
