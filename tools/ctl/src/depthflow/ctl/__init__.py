"""depthflow package."""
