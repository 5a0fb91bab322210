"""Job runs (schedule, manual, queue): decisions (pure), the ECS edge, the runbook; schedules and the placement check."""
