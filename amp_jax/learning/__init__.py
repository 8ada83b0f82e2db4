"""The learner: networks, normalisers, replay buffer, PPO, the discriminator and the compiled training step."""
