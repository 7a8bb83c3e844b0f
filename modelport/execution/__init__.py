"""How a model executes: the runner (its hooks, in order, on the loop or off it), the hook threads,
the loop budget, adaptive batching and the inference process pool."""
