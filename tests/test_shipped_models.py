"""The trained policies in models/ still reach their bars: each models/CASE.npz whose committed eval report
(models/CASE.eval.json) says its bar passed is evaluated again here, in MJX, on the report's episodes (the same
starts: a policy that falls once in 64 episodes must not be judged on 16 of them that hold the fall), and must
reach the same bar with the same measures (a change to the physics, the observations or the loaders that
breaks a shipped policy fails here, not in a user's hands)."""

import json
from pathlib import Path

import pytest

from amp_jax.training.build import evaluate_run

MODELS = Path(__file__).resolve().parent.parent / "models"
PASSED = sorted(p.name.removesuffix(".eval.json") for p in MODELS.glob("*.eval.json")
                if json.loads(p.read_text())["bar"]["passed"])


def test_every_passed_bar_has_its_policy():
    assert PASSED, "no trained case in models/"
    for case in PASSED:
        assert (MODELS / f"{case}.npz").is_file(), f"models/{case}.eval.json passed its bar, but no models/{case}.npz"


@pytest.mark.parametrize("case", PASSED)
def test_a_shipped_policy_still_reaches_its_bar(case):
    committed = json.loads((MODELS / f"{case}.eval.json").read_text())
    report = evaluate_run(str(MODELS / f"{case}.npz"), committed["episodes"], committed["num_envs"], committed["seed"],
                          "mjx")
    assert report["case"] == committed["case"] == case
    measures = report["bar"]["measures"]
    assert report["bar"]["passed"], measures
    assert set(measures) == set(committed["bar"]["measures"])
    # The same episodes of the same policy: the measures are the committed ones, up to float rounding that a
    # long rollout can grow.
    assert report["fall_rate"] <= committed["fall_rate"] + 0.05
    assert report["motion_matching"]["stay"] == pytest.approx(committed["motion_matching"]["stay"], abs=0.05)
    assert report["motion_matching"]["cover"] == pytest.approx(committed["motion_matching"]["cover"], abs=0.05)
