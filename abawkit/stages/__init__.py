"""Stages: the only code that touches run directories. Each has ``run(cfg, workdir, ...)``."""
