"""Side-by-side load benchmarks of the mock portal; see ``benchmarks/RESULTS.md``."""
