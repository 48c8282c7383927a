"""Training engine: trainer loop, checkpoints, progress and metrics logging, building components from specs."""
