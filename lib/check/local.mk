# lib/check/: the agreement check of the numerics contract (a backend's outputs
# against the float64 oracle, standard attention as the yardstick), above
# the entry points it calls; fa2 run --check uses it.
noinst_HEADERS += lib/check/fa2_check.h
lib_libfa2_la_SOURCES += lib/check/contract.c
# fa2 verify's engine: another implementation's .npy outputs against the
# oracle and the bound (tools/cmd_verify.c parses its options)
noinst_HEADERS += lib/check/fa2_verify.h
lib_libfa2_la_SOURCES += lib/check/verify.c
# fa2 trace --html's teaching page: the mirror's own trace, drawn
noinst_HEADERS += lib/check/fa2_teach_html.h
lib_libfa2_la_SOURCES += lib/check/teach_html.c
