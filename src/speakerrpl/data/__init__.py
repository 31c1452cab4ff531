"""Corpora on disk: Kaldi data dirs, audio folders, loaders of real corpora, protocols."""
