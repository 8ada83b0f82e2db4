"""Rendering: poses -> frames (MuJoCo's renderer), video/GIF files, and the browser viewer (an HTML 3-D replay)."""
