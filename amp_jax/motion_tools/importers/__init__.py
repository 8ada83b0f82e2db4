"""Converters between other projects' motion formats and amp-jax clips.

`import_motion` is `amp-jax import`: an AMASS-style SMPL .npz (`amass`, onto the SMPL character), a
DeepMimic humanoid3d .txt (`deepmimic`, onto the humanoid) or a MimicKit .pkl (`mimickit`, onto the
character whose DoF count fits its frames, or the one named) becomes an amp-jax .npz clip whose width has
been checked against the character.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from amp_jax import catalog
from amp_jax.errors import InputError

FORMATS = ("amass", "deepmimic", "mimickit")
DEFAULT_CHARACTER = {"amass": "smpl", "deepmimic": "humanoid"}
def load_named_character(name_or_path: str):
    """A character by its assets/ folder name (e.g. smpl) or by the path of its MJCF file."""
    from amp_jax.characters.character import load_character

    path = Path(name_or_path)
    if path.suffix != ".xml":
        path = catalog.character_path(name_or_path)
        if not path.is_file():
            known = catalog.character_names()
            raise InputError(f"unknown character '{name_or_path}'; known: {known}, or give an MJCF path")
    return load_character(path)


def _fitting_character(num_dof: int, source: str):
    """The one character in assets/ with num_dof DoFs."""
    fits = [c for c in map(load_named_character, catalog.character_names()) if c.layout.num_dof == num_dof]
    if len(fits) != 1:
        raise InputError(f"{source}: frames of width {6 + num_dof} ({num_dof} DoFs) fit "
                         f"{'none' if not fits else [c.layout.name for c in fits]} of the characters in "
                         f"{catalog.ASSETS_DIR}; name one with --character")
    return fits[0]


def import_motion(source: str | Path, fmt: str, out: str | Path, character: str | None = None, *,
                  floor: str = "calibrate", loop: bool = False):
    """Convert `source` (format `fmt`) to an amp-jax clip of `character`, write it to `out` (.npz) and
    return it. floor and loop apply to AMASS files (see amp_jax.motion_tools.importers.amass)."""
    from amp_jax.motion.clip import load_clip, save_clip

    if fmt not in FORMATS:
        raise InputError(f"unknown motion format '{fmt}'; known: {list(FORMATS)}")
    if Path(out).suffix != ".npz":
        raise InputError(f"{out}: the output is an amp-jax clip, a .npz file")
    if fmt == "amass":
        from amp_jax.motion_tools.importers.amass import amass_to_clip, read_amass

        motion = read_amass(source)
        char = load_named_character(character or DEFAULT_CHARACTER[fmt])
        clip = amass_to_clip(motion, char.layout, char.mj_model, floor=floor, loop=loop)
    elif fmt == "deepmimic":
        from amp_jax.motion_tools.importers.deepmimic import deepmimic_to_humanoid, read_deepmimic

        motion = read_deepmimic(source)
        char = load_named_character(character or DEFAULT_CHARACTER[fmt])
        clip = deepmimic_to_humanoid(motion, char.layout)
    else:
        clip = load_clip(source)
        char = (load_named_character(character) if character
                else _fitting_character(clip.dof_pos.shape[1], str(source)))
        clip.validate(str(source), char.layout.num_dof)
        clip = dataclasses.replace(clip, character=char.layout.name, dof_names=tuple(char.layout.dof_names))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_clip(out, clip)
    return clip
