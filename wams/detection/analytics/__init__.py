"""Disturbance and oscillation analytics: numpy arrays in, dataclasses out; no Django."""
