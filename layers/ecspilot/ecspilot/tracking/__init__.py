"""ECS state events -> closed deployment and run records, metrics, notifications."""
