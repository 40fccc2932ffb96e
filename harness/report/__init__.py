"""The self-contained HTML report of a run, and its capacity section."""
