"""ECS state events -> closed deployment and run records, metrics, notifications.

- :mod:`~ecspilot.tracking.decisions`: pure: event -> status, the forward-only moves, run outcomes;
- :mod:`~ecspilot.tracking.messages`: the notifications' text (pure);
- :mod:`~ecspilot.tracking.report`: metric dimensions (the notifier is :mod:`ecspilot.aws.notify`);
- :mod:`~ecspilot.tracking.essential`: a revision's essential containers (ECS read, cached);
- :mod:`~ecspilot.tracking.health_decisions` (pure: which stops are replacements, when they are
  a crash loop), :mod:`~ecspilot.tracking.health_messages` (their text) and
  :mod:`~ecspilot.tracking.health` (the service task runbook: stops recorded, crash loops notified);
- :mod:`~ecspilot.tracking.deployments` / :mod:`~ecspilot.tracking.runs`: the two runbooks;
- :mod:`~ecspilot.tracking.handler`: the entry point, the one module that reads the ``Runtime``.
"""
