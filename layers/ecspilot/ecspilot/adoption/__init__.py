"""Adoption: an ecspilot config from what already runs (init) and from AWS Copilot manifests (import copilot)."""
