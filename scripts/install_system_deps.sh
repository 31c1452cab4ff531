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
  flite                   # TTS (corpus eval voices): CMU awb, rms, slt
  festival                # TTS (corpus eval voices) with the festvox voices below
  festvox-kallpc16k festvox-kdlpc16k festvox-italp16k festvox-itapc16k
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph
  festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts
)
# contrib / non-free: MBROLA diphone voices (driven by espeak-ng -v mb-xx), SVOX pico, and the
# festvox voices Debian files under contrib/non-free. The corpus builder works without them.
PACKAGES_NONFREE=(
  libttspico-utils festvox-rablpc16k festvox-don festvox-ellpc11k
  mbrola-af1 mbrola-ar1 mbrola-ar2 mbrola-br1 mbrola-br2 mbrola-br3 mbrola-br4 mbrola-ca1
  mbrola-ca2 mbrola-cr1 mbrola-cz1 mbrola-cz2 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4
  mbrola-de5 mbrola-de6 mbrola-de7 mbrola-de8 mbrola-ee1 mbrola-es1 mbrola-es2
  mbrola-es3 mbrola-es4 mbrola-fr1 mbrola-fr2 mbrola-fr3 mbrola-fr4 mbrola-fr5 mbrola-fr6
  mbrola-fr7 mbrola-gr1 mbrola-gr2 mbrola-hb1 mbrola-hb2 mbrola-hu1 mbrola-ic1 mbrola-id1
  mbrola-in1 mbrola-in2 mbrola-ir1 mbrola-it1 mbrola-it2 mbrola-it4 mbrola-la1
  mbrola-lt1 mbrola-lt2 mbrola-ma1 mbrola-mx1 mbrola-mx2 mbrola-nl2 mbrola-nl3 mbrola-nz1
  mbrola-pl1 mbrola-pt1 mbrola-ro1 mbrola-sw1 mbrola-sw2 mbrola-tr1 mbrola-tr2 mbrola-us1
  mbrola-us2 mbrola-us3 mbrola-vz1
)

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
      # only Debian's own archive lines (third-party repositories have no such components)
      $SUDO sed -i -E '/^deb .*(deb|security)\.debian\.org/{/contrib/! s/ main/ main contrib non-free/}' "$f"
    fi
  done
else
  PACKAGES_NONFREE=()
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES_MAIN[@]}" "${PACKAGES_NONFREE[@]}" >/dev/null
