"""Image push -> digest-pinned revisions -> rolled services: rules (pure), the runbook, its writes (claim, update, verify, record), catch-up."""
