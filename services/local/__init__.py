"""The local stack: predictor, optimizer and gateway as child processes, and ``tailorline up``."""
