"""Self-supervised methods that make two views' embeddings agree while decorrelating their dimensions: Barlow Twins
and VICReg."""
