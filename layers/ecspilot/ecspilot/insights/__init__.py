"""Delivery insights: the four DORA keys from the state table's deployment records.

- :mod:`~ecspilot.insights.bands`: the performance bands and their published thresholds (pure);
- :mod:`~ecspilot.insights.keys`: a record -> a :class:`~ecspilot.insights.keys.Deployment`, and
  the four keys of one service's deployments (pure, table-tested);
- :mod:`~ecspilot.insights.report`: the keys per service and per promotion chain (pure);
- :mod:`~ecspilot.insights.reads`: the records of a period, one Query per service (the edge).
"""
