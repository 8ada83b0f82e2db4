"""Evaluation: the one deterministic rollout, its statistics, motion matching, the report, sim-to-sim."""
