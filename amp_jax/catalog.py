"""Where things are, and nothing else: the data root and its folders (configs/, assets/), the
cases, the case that stands for each character, the file of a named character, and how a path written in
a config is resolved. Reading what is there is for the layers above (config, characters, motion)."""

from __future__ import annotations

from pathlib import Path

from amp_jax.errors import InputError

_CHECKOUT = Path(__file__).resolve().parent.parent
# The checkout (also under an editable install), or amp_jax/_data in an installed wheel (pyproject.toml maps
# the three folders there).
DATA_ROOT = _CHECKOUT if (_CHECKOUT / "configs").is_dir() else Path(__file__).resolve().parent / "_data"
CONFIG_DIR = DATA_ROOT / "configs"
ASSETS_DIR = DATA_ROOT / "assets"

# The case that stands for each character (bench, view-motion, inspect): its observation and network sizes.
CHARACTER_CASES = {
    "humanoid": "amp_humanoid",
    "humanoid_sword_shield": "amp_location_humanoid_sword_shield",
    "g1": "amp_g1",
    "go2": "amp_go2",
    "pi_plus": "amp_pi_plus",
    "smpl": "amp_smpl",
}


PRESET_DIR = CONFIG_DIR / "presets"


def preset_names() -> list[str]:
    """The presets: configs/presets/*.yaml by name. Preset P of case C is the case C_P."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def case_names() -> list[str]:
    """The cases: configs/*.yaml by name, and each of them (but the smoke cases) with each preset, sorted."""
    files = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    return sorted(files | {f"{c}_{p}" for c in files if not c.endswith("_smoke") for p in preset_names()})


def config_sources(path: Path) -> list[Path]:
    """The YAML files a config path stands for, to be merged in order: the file itself where it is (a file
    configs/C_P.yaml would stand before the preset); for configs/C_P.yaml where it is not, configs/C.yaml then configs/presets/P.yaml (a case with a preset);
    else [] (no such config)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.parent.resolve() == CONFIG_DIR.resolve():
        for preset in preset_names():
            base = CONFIG_DIR / f"{path.stem.removesuffix(f'_{preset}')}.yaml"
            if path.stem.endswith(f"_{preset}") and base.is_file():
                return [base, PRESET_DIR / f"{preset}.yaml"]
    return []


def case_path(name_or_path: str) -> Path:
    """A case name (configs/<name>.yaml) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    return CONFIG_DIR / f"{name_or_path}.yaml"


def case_for_character(name: str) -> Path:
    """The config of the case that stands for a character of assets/ (CHARACTER_CASES)."""
    if name not in CHARACTER_CASES:
        raise InputError(f"no case stands for the character '{name}' (known: {sorted(CHARACTER_CASES)}); "
                         "pass --config")
    return case_path(CHARACTER_CASES[name])


def character_names() -> list[str]:
    """The characters of assets/: folders <name> holding <name>.xml."""
    return sorted(p.name for p in ASSETS_DIR.iterdir() if (p / f"{p.name}.xml").is_file())


def character_path(name: str) -> Path:
    """The MJCF file of a character of assets/ by name."""
    return ASSETS_DIR / name / f"{name}.xml"


def resolve_path(p: str | Path) -> Path:
    """Paths in configs are relative to the working directory, else to DATA_ROOT (the repository root)."""
    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    return DATA_ROOT / path
