"""Reports: training-curve plots."""
