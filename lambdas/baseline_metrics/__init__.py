"""The approved model's PR-AUC for the feature orchestration, before it starts the training pipeline."""
