# doc/: documentation and the man page.
