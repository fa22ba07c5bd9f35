"""Data: the official release, the synthetic release, frame tables, folds, media I/O."""
