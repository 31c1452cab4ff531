"""Corpora, manifests (Kaldi data dirs), protocols, the synthetic voice pool."""
