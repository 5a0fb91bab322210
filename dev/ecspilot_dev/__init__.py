"""ecspilot's development tools: never in the Lambda layer (they need moto, or exist for local runs).

- :mod:`ecspilot_dev.local`: the real handlers run locally, moto's server in-process, a call recorder;
- :mod:`ecspilot_dev.sandbox`: sample AWS resources built through public APIs;
- :mod:`ecspilot_dev.demo`: ``ecspilot demo``.
"""
