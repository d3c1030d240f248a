#!/usr/bin/env bash
# Defended rows of the results table: the shipped EBM defense (model defaults K, R = 8) under transfer, BPDA+EOT and
# the adaptive exact-gradient attack. Run from the repository root; each command resumes if interrupted.
set -euo pipefail
common=(--n 200 --offset 1000 --threads 1 --no-progress --data-dir ../shared/data)
transfer=(--attack transfer --loss margin --attack-steps 100 --verify-candidates 1)
ebm-purify evaluate --model mnist --eps-list 0.1,0.2,0.3 --out results/mnist/ebm-transfer-linf "${transfer[@]}" "${common[@]}"
