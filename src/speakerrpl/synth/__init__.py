"""Offline synthetic speech: TTS engines, voices, the corpus builder, test conditions, the pool.

Needs the ``corpus`` extra (``pip install 'speakerrpl[corpus]'``) and Debian's TTS engines
(``scripts/install_system_deps.sh``).
"""
