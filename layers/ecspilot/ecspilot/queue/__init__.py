"""Queue-driven jobs: request validation (pure), the batch runbook, the redrive policy."""
