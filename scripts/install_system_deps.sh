#!/usr/bin/env bash
# Installs the Debian packages speakerrpl's demo and tests need. Idempotent; needs root (or sudo).
#
# NOTE: this enables Debian's `contrib` and `non-free` components, because the MBROLA diphone
# voices (mbrola-*) and SVOX pico (libttspico-utils) used by the synthetic corpus live there.
# Set SPEAKERRPL_MAIN_ONLY=1 to stay on `main`; the corpus builder then uses fewer voices and warns.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES_MAIN=(
  pocketsphinx-testdata   # real recordings of two people: the sanity fixture of the tests
  espeak-ng               # TTS: synthetic negative-pool voices and the MBROLA driver
  sox                     # audio conversion used by some TTS engines
)
PACKAGES_NONFREE=()

missing=()
for p in "${PACKAGES_MAIN[@]}" "${PACKAGES_NONFREE[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "${SPEAKERRPL_MAIN_ONLY:-0}" != "1" ] && [ ${#PACKAGES_NONFREE[@]} -gt 0 ]; then
  echo "install_system_deps: enabling Debian contrib and non-free (MBROLA voices, SVOX pico)" >&2
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -f "$f" ] || continue
    if [[ "$f" == *.sources ]]; then
      $SUDO sed -i -E '/^Components:/{/contrib/! s/$/ contrib/; /non-free( |$)/! s/$/ non-free/}' "$f"
    else
      $SUDO sed -i -E '/^deb /{/contrib/! s/ main/ main contrib non-free/}' "$f"
    fi
  done
else
  PACKAGES_NONFREE=()
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES_MAIN[@]}" "${PACKAGES_NONFREE[@]}" >/dev/null
