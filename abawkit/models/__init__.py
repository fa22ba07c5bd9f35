"""Models: MAE (timm ViT blocks), task heads, TMF transformer, VGGish, checkpoint adapters."""
