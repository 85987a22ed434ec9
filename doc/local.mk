# doc/: documentation and the man page.
dist_man_MANS += doc/fa2.1
dist_doc_DATA += doc/algorithm.md doc/design.md
dist_doc_DATA += doc/api.md
dist_doc_DATA += doc/NOTES.md
dist_doc_DATA += doc/PERFORMANCE.md doc/NOTES-gpu.md doc/NOTES-arch.md
# the GPU benchmark (bench/) and the Python binding (python/): shipped, not built
EXTRA_DIST += bench/NOTES-fwd90.md doc/figures/fwd90-timeline.svg \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.csv \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.json \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.png
EXTRA_DIST += bench/NOTES-bwd.md bench/bwd_compare.py bench/device_run.sh \
	bench/pack_run.sh bench/sdpa_compare.py bench/traffic_probe.py \
	python/fa2.py python/test_train.py
