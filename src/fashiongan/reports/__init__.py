"""Reports: training-curve plots and the evaluation report."""
