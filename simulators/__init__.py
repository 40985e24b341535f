"""Simulated GPS, buttons, network faults and whole fleets, for testing without hardware."""
