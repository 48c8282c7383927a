"""Self-supervised methods whose targets come from a momentum (EMA) copy of the network: BYOL, MoCo v3, DINO."""
