"""The closed-loop simulator (``tailorline simulate``): see docs/simulator.md."""
