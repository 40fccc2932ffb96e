"""The results folder: run ids, atomic files, provenance, HDR histograms."""
