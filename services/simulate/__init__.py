"""The closed-loop simulator (``tailorline simulate``): see docs/simulator.md."""

#: The demand quantile every policy plans for in the simulator: 0.5, not the API's 0.9, on
#: purpose (docs/simulator.md "Why service level 0.5", both runs in docs/benchmarks.md).
SIM_SERVICE_LEVEL = 0.5
