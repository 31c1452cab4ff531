"""Deployment: the persistent speaker registry and the REST service over the Python API."""
