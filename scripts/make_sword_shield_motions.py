"""Build the sword-and-shield locomotion dataset from the humanoid locomotion dataset.

    python scripts/make_sword_shield_motions.py

The sword-and-shield character is the humanoid plus a 3-DoF right wrist and two fixed bodies, so each
humanoid clip transfers by DoF name, with the wrist held at a guard pose (blade forward, tipped up).
Writes motions/humanoid_sword_shield/*.npz and dataset_humanoid_sword_shield_locomotion.yaml.
"""

from pathlib import Path

import yaml

from amp_jax.characters.character import load_character
from amp_jax.motion.clip import load_motion_set, save_clip
from amp_jax.motion_tools.transfer import transfer_by_dof_name

ROOT = Path(__file__).resolve().parent.parent
GUARD_WRIST = {"right_hand_x": 0.0, "right_hand_y": -0.5, "right_hand_z": 0.0}  # exp map, radians


def main():
    source = load_character(ROOT / "assets/humanoid/humanoid.xml").layout
    target = load_character(ROOT / "assets/humanoid_sword_shield/humanoid_sword_shield.xml").layout
    clips, _, names = load_motion_set(ROOT / "motions/humanoid/dataset_humanoid_locomotion.yaml", source.num_dof)
    out = ROOT / "motions/humanoid_sword_shield"
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for clip, name in zip(clips, names):
        file = name.replace("humanoid_", "humanoid_sword_shield_", 1) + ".npz"
        save_clip(out / file, transfer_by_dof_name(clip, source, target, GUARD_WRIST))
        entries.append({"file": file, "weight": 1.0})
        print(f"{file}: {clip.num_frames} frames")
    header = ("# The sword-and-shield locomotion dataset: amp-jax's humanoid locomotion clips transferred to the\n"
              "# sword-and-shield character (wrist held at a guard pose), weight 1 each as in MimicKit's dataset.\n"
              "# Made by scripts/make_sword_shield_motions.py.\n")
    (out / "dataset_humanoid_sword_shield_locomotion.yaml").write_text(header + yaml.safe_dump({"motions": entries}, sort_keys=False))


if __name__ == "__main__":
    main()
