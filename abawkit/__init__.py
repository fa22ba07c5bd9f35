"""abawkit: go from the Aff-Wild2 release to a valid ABAW submission (MAE + TMF recipe)."""

__version__ = "0.1.0"
