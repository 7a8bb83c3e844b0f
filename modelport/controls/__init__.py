"""Controls composed around the data plane (auth, limits, CORS, admin request rules)."""
