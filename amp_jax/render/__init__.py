"""Rendering: poses -> frames (MuJoCo's renderer) and video/GIF files."""
