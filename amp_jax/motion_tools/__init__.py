"""Offline clip tooling, never used by training: importers, retargeting, quality checks, mirroring, transfer."""
