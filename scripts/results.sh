#!/usr/bin/env bash
# The README's robustness results table (issues 4 and 9), exactly as it was run: every row on test images
# 1000-1199 (0-999 are the tuning slice), shipped models, one thread per process. Each command resumes if
# interrupted; the rows are independent, so two shells can share them (this machine ran two queues).
# Afterwards: ebm-purify evaluate table results/<data set>/* --out results/<data set>/table
set -euo pipefail
# Every evaluation here ran before attacks were seeded per image (session 10): --seeding batch reproduces them and lets
# the committed folders resume (a per-image run refuses a folder seeded per batch).
cd "$(dirname "$0")/.."
common=(--n 200 --offset 1000 --threads 1 --no-progress --data-dir ../shared/data)
whitebox=(--defense none --attack bpda-eot --loss margin --attack-steps 100 --restarts 5 --stop-after 1)
transfer=(--attack transfer --loss margin --attack-steps 100 --verify-candidates 1)
bpda=(--attack bpda-eot --loss margin --eot 8 --attack-steps 50 --stop-after 2)
adaptive=(--attack adaptive --loss margin --eot 8 --attack-steps 50 --stop-after 2)

# 1. classifiers without defense: white-box PGD on the natural and the PGD-trained classifier
for clf in classifier classifier-pgd; do
  ebm-purify evaluate --seeding batch --model mnist --classifier mnist:$clf --eps-list 0.1,0.2,0.3 --out results/mnist/$clf-linf "${whitebox[@]}" "${common[@]}"
  ebm-purify evaluate --seeding batch --model mnist --classifier mnist:$clf --norm l2 --eps 2.0 --out results/mnist/$clf-l2 "${whitebox[@]}" "${common[@]}"
  ebm-purify evaluate --seeding batch --model fashion-mnist --classifier fashion-mnist:$clf --eps-list 0.05,0.1 --out results/fashion-mnist/$clf-linf "${whitebox[@]}" "${common[@]}"
  ebm-purify evaluate --seeding batch --model fashion-mnist --classifier fashion-mnist:$clf --norm l2 --eps 1.0 --out results/fashion-mnist/$clf-l2 "${whitebox[@]}" "${common[@]}"
done

# 2. the EBM defense (model defaults: MNIST K = 500, Fashion-MNIST K = 50; R = 8): transfer, BPDA+EOT, adaptive
ebm-purify evaluate --seeding batch --model mnist --eps-list 0.1,0.2,0.3 --out results/mnist/ebm-transfer-linf "${transfer[@]}" "${common[@]}"
nat=(--natural-from results/mnist/ebm-transfer-linf)
ebm-purify evaluate --seeding batch --model mnist --norm l2 --eps 2.0 --out results/mnist/ebm-transfer-l2 "${transfer[@]}" "${nat[@]}" "${common[@]}"
# MNIST BPDA+EOT at K = 500 with the budget above would take about 2 hours of both cores; this one is cut (EOT 4,
# 10 steps of 0.06, stop at the first fooled estimate) and runs as two shards, then merges
for i in 0 1; do
  ebm-purify evaluate --seeding batch --model mnist --eps 0.3 --attack bpda-eot --loss margin --eot 4 --attack-steps 10 --step-size 0.06 --stop-after 1 \
    --shard $i/2 --out runs/mnist-bpda-shard$i "${nat[@]}" "${common[@]}" &
done
wait
ebm-purify evaluate merge runs/mnist-bpda-shard0 runs/mnist-bpda-shard1 --out results/mnist/ebm-bpda-eot-linf
# the adaptive attack on MNIST, cut the same way: exact gradients through the first 50 of the 500 chain steps
for i in 0 1; do
  ebm-purify evaluate --seeding batch --model mnist --eps 0.3 --attack adaptive --surrogate-steps 50 --loss margin --eot 4 --attack-steps 10 --step-size 0.06 \
    --stop-after 1 --shard $i/2 --out runs/mnist-adaptive-shard$i "${nat[@]}" "${common[@]}" &
done
wait
ebm-purify evaluate merge runs/mnist-adaptive-shard0 runs/mnist-adaptive-shard1 --out results/mnist/ebm-adaptive-linf
ebm-purify evaluate --seeding batch --model fashion-mnist --eps-list 0.05,0.1 --out results/fashion-mnist/ebm-transfer-linf "${transfer[@]}" "${common[@]}"
nat=(--natural-from results/fashion-mnist/ebm-transfer-linf)
ebm-purify evaluate --seeding batch --model fashion-mnist --norm l2 --eps 1.0 --out results/fashion-mnist/ebm-transfer-l2 "${transfer[@]}" "${nat[@]}" "${common[@]}"
ebm-purify evaluate --seeding batch --model fashion-mnist --eps-list 0.05,0.1 --out results/fashion-mnist/ebm-bpda-eot-linf "${bpda[@]}" "${nat[@]}" "${common[@]}"
# (on this machine the first 100 images ran unsharded, then their rows were split into the two shard folders and the rest resumed there)
for i in 0 1; do
  ebm-purify evaluate --seeding batch --model fashion-mnist --eps 0.1 --surrogate-steps 25 --shard $i/2 --out runs/fadapt-shard$i "${adaptive[@]}" "${nat[@]}" "${common[@]}" &
done
wait
ebm-purify evaluate merge runs/fadapt-shard0 runs/fadapt-shard1 --out results/fashion-mnist/ebm-adaptive-linf

# 3. cheap baseline defenses, attacked like the EBM (thresholding through a sigmoid surrogate)
for defense in binarize noise-median; do
  ebm-purify evaluate --seeding batch --model mnist --defense $defense --eps-list 0.1,0.2,0.3 --out results/mnist/$defense-bpda-eot-linf "${bpda[@]}" "${common[@]}"
  ebm-purify evaluate --seeding batch --model fashion-mnist --defense $defense --eps-list 0.05,0.1 --out results/fashion-mnist/$defense-bpda-eot-linf "${bpda[@]}" "${common[@]}"
done

for data in mnist fashion-mnist; do
  ebm-purify evaluate table results/$data/*/ --out results/$data/table > /dev/null
done
