"""Capacity search and analysis: arrival-rate steps, knee, USL, queueing theory."""
