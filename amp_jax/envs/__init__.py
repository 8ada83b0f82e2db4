"""The AMP environment: reset/step over a pure state, observations, tasks, PD control, and its Brax view."""
