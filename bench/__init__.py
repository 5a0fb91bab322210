"""ecspilot's benchmarks: figures printed side by side with a baseline or a peer. Not tests."""
