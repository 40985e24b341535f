"""The unit: a sans-I/O core (firmware/core/) and thin drivers around it."""
