"""How images become model input: decoding, caching, augmentation, transforms."""
