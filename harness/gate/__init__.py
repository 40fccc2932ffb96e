"""Gating: SLOs, comparisons against baselines, verdicts, A/B runs."""
