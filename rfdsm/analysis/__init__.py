"""Analyses of results: the theory-vs-simulation validation, the optimal ridge, time-scales and
early stopping of a training-time curve, and the pooled bias-variance split.  They call the
evaluators and read records; nothing below imports them."""
