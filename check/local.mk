# check/: the agreement check of the numerics contract (a backend's outputs
# against the float64 oracle, standard attention as the yardstick), above
# the entry points it calls; fa2 run --check uses it.
noinst_HEADERS += check/fa2_check.h
lib_libfa2_la_SOURCES += check/contract.c
