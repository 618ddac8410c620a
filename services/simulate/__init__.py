"""The closed-loop simulator (``tailorline simulate``): see docs/simulator.md.

tailorline's policy plans in the project's default demand mode (expected profit, through the
gateway); the quantile policies (:data:`services.simulate.policies.QUANTILE_LEVELS`) plan the same
problem at fixed service levels, so the two modes meet on the same forecasts."""
