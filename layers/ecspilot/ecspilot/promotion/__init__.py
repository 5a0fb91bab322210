"""Promotion (issue 13): a service with ``promote`` runs its source's last COMPLETED, baked, gated
images. ``decisions`` (pure: the release, the gates, the plan word), ``records`` (the state
table's promotion items: approvals, notices, history), ``sources`` (the source's reads: its
records, what it runs, its alarms), ``runbook`` (evaluate and apply through the deploy core),
``timer`` (the one-time Scheduler schedule at the end of a bake), ``handler`` (the entry points)."""
