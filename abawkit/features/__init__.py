"""Feature extraction (vision, audio) and the per-video float16 feature store."""
