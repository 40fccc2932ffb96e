"""One campaign end to end: the campaign model, its processes, progress and summary."""
