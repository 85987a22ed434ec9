# doc/: documentation and the man page.
dist_man_MANS += doc/fa2.1 doc/fa2.3
dist_doc_DATA += doc/algorithm.md doc/design.md
dist_doc_DATA += doc/api.md
dist_doc_DATA += doc/NOTES.md
dist_doc_DATA += doc/PERFORMANCE.md doc/NOTES-gpu.md doc/NOTES-arch.md
dist_doc_DATA += doc/NOTES-modifiers.md
# the GPU benchmark (bench/) and the Python binding (python/): shipped, not built
EXTRA_DIST += bench/NOTES-fwd90.md doc/figures/fwd90-timeline.svg bench/sim_vs_measured.py \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.csv \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.json \
	bench/results/h200-2026-12-01-fwd90/sdpa_compare.png \
	bench/results/h200-2026-12-02-fwd90-pairs/sdpa_compare.csv \
	bench/results/h200-2026-12-02-fwd90-pairs/sdpa_compare.json \
	bench/results/h200-2026-12-02-fwd90-pairs/grid.txt \
	bench/results/h200-2026-12-02-fwd90-ostore/sdpa_compare.csv \
	bench/results/h200-2026-12-02-fwd90-ostore/sdpa_compare_chains.csv \
	bench/results/h200-2026-12-02-fwd90-ostore/sdpa_compare_fp16.csv \
	bench/results/h200-2026-12-02-fwd90-ostore/decode_compare_bulk.csv
EXTRA_DIST += bench/NOTES-bwd.md bench/bwd_compare.py bench/bwd_det.py bench/device_run.sh \
	bench/pack_run.sh bench/sdpa_compare.py bench/traffic_probe.py \
	python/test_train.py
# the charts and tables doc/PERFORMANCE.md shows (it links to them)
EXTRA_DIST += \
	bench/results/h100-2026-11-24/sdpa_compare.png \
	bench/results/h100-2026-11-24/sdpa_compare.csv \
	bench/results/h100-2026-11-24-bwd/sdpa_compare_bwd.png \
	bench/results/h100-2026-11-24-bwd/sdpa_compare_fwdbwd.png \
	bench/results/h100-2026-11-24-bwd/sdpa_compare.csv \
	bench/results/h100-2026-11-24-bwd/train_bf16.txt \
	bench/results/h100-2026-11-24-final/sdpa_compare.png \
	bench/results/h100-2026-11-24-final/sdpa_compare.csv \
	bench/bwd_device_run.sh
dist_doc_DATA += doc/NOTES-trust.md
# the KV-cache forward (issue 14): its running log and decode benchmark
dist_doc_DATA += doc/NOTES-kvcache.md
EXTRA_DIST += bench/decode_compare.py bench/sim_decode_calib.py bench/mods_cost.py bench/fwd_sched.py \
	bench/lib_ab.sh bench/decode_splits.py bench/fwd_consumers.py bench/decode_host_graph.py \
	bench/l2_check.py bench/decode_key_warps.py bench/same_bytes.py \
	bench/pack_variant.sh bench/pack_lib.sh bench/ab_device.sh
# ring attention (issue 18): its running log and the multi-GPU check
dist_doc_DATA += doc/NOTES-ring.md
EXTRA_DIST += bench/ring_nccl.py
