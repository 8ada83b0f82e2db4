"""Motion clips: clip files (amp-jax, MimicKit) and the on-device MotionLibrary."""
