"""The deployment policy made executable: plans, blockers and the rollout controller (the one brain)."""
