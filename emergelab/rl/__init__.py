"""Reinforcement learning and preference post-training: GRPO, rewards, reward model, DPO, distillation."""
