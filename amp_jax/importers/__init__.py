"""Converters from other projects' motion formats to amp-jax clips."""
