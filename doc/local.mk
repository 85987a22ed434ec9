# doc/: documentation and the man page.
dist_man_MANS += doc/fa2.1
dist_doc_DATA += doc/algorithm.md
dist_doc_DATA += doc/api.md
dist_doc_DATA += doc/NOTES.md
dist_doc_DATA += doc/PERFORMANCE.md doc/NOTES-gpu.md
# the GPU benchmark (bench/) and the Python binding (python/): shipped, not built
EXTRA_DIST += bench/NOTES-bwd.md bench/bwd_compare.py bench/device_run.sh \
	bench/pack_run.sh bench/sdpa_compare.py bench/traffic_probe.py \
	python/fa2.py python/test_train.py
dist_doc_DATA += doc/NOTES-trust.md
