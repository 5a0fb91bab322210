"""DAEMON services and managed daemons that must exist on clusters.

- :mod:`~ecspilot.daemons.decisions`: pure: desired x observed -> a decision, and the requests;
- :mod:`~ecspilot.daemons.ecs_edge`: clusters, task definitions, DAEMON services (ECS calls);
- :mod:`~ecspilot.daemons.managed_edge`: the Managed Daemons API (ECS calls);
- :mod:`~ecspilot.daemons.runbook`: :class:`DaemonReconciler`, the runbook over all of them;
- :mod:`~ecspilot.daemons.handler`: the reconcile part, the one module that reads the ``Runtime``.
"""
