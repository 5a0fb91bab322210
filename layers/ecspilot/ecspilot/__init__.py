"""ecspilot: a serverless, event-driven operator for Amazon ECS."""

__version__ = "0.1.0"
