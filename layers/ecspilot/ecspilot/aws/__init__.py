"""The AWS edge: clients, the one ECS read layer, the state table (history, claims, service state), bounded fan-out."""
