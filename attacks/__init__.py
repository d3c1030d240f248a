"""Offline robustness evaluation of purification defenses: PGD (Linf, L2), BPDA+EOT, exact-gradient
adaptive attacks, transfer attacks, torchattacks interop, reports and plots."""
