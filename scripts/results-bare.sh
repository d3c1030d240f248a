#!/usr/bin/env bash
# Classifier-only rows of the results table (no defense): white-box PGD on the bare and PGD-trained classifiers.
set -euo pipefail
common=(--defense none --attack bpda-eot --loss margin --attack-steps 100 --restarts 5 --stop-after 1 --n 200 --offset 1000 --threads 1 --no-progress --data-dir ../shared/data)
for clf in classifier classifier-pgd; do
  ebm-purify evaluate --model mnist --classifier mnist:$clf --eps-list 0.1,0.2,0.3 --out results/mnist/$clf-linf "${common[@]}"
  ebm-purify evaluate --model mnist --classifier mnist:$clf --norm l2 --eps 2.0 --out results/mnist/$clf-l2 "${common[@]}"
  ebm-purify evaluate --model fashion-mnist --classifier fashion-mnist:$clf --eps-list 0.05,0.1 --out results/fashion-mnist/$clf-linf "${common[@]}"
  ebm-purify evaluate --model fashion-mnist --classifier fashion-mnist:$clf --norm l2 --eps 1.0 --out results/fashion-mnist/$clf-l2 "${common[@]}"
done
