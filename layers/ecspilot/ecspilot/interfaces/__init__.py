"""What faces people and Lambda: the CLI and its presentation, status, the process runtime, settings, trusted origins."""
