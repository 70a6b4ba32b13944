"""Long analytic SQL of the resolvers, loaded with ``importlib.resources`` and run with bound parameters."""
