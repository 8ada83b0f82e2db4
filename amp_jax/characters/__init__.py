"""Characters: MJCF -> MJX model and Layout, kinematics, the physics backend (jax | warp)."""
