"""``speakerrpl embed``: audio (folder, Kaldi data dir or one file) -> embeddings ``.npz``."""

from __future__ import annotations

import argparse
import sys

from speakerrpl.errors import SpeakerRPLError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand."""
    parser = subparsers.add_parser(
        "embed",
        help="extract speaker embeddings from audio into an .npz",
        description=(
            "Embed every utterance of DATA: a Kaldi data dir (wav.scp + utt2spk), a folder with "
            "one sub-folder of audio files per speaker (wav, flac, ogg, mp3, aiff, au, ...), or a "
            "single audio file. Results "
            "are cached by audio content, so a re-run only embeds new files. Exit status: 0 all "
            "embedded, 1 some files failed (listed; the .npz holds the rest), 2 nothing usable."
        ),
    )
    parser.add_argument("data", help="Kaldi data dir, folder of speaker folders, or audio file")
    parser.add_argument("--frontend", default="campplus", help="frontend name (default campplus)")
    parser.add_argument("--out", required=True, help="output .npz path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default cpu")
    parser.add_argument("--batch-size", type=int, default=16, help="utterances per batch")
    parser.add_argument("--jobs", type=int, default=1, help="audio decoding threads")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="embedding processes, one thread each (default: one per CPU for large inputs)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="embed on Ray actors (needs speakerrpl[ray]); ADDRESS of a cluster, else local",
    )
    parser.add_argument("--ray-actors", type=int, default=None, help="Ray actors (default: CPUs)")
    parser.add_argument(
        "--ray-gpus", type=float, default=0.0, help="GPUs per Ray actor (e.g. 0.25; default 0)"
    )
    parser.add_argument("--cache-dir", default=None, help="default $SPEAKERRPL_CACHE or ~/.cache")
    parser.add_argument(
        "--model-path", default=None, help="model file/dir for the onnx and wavlm frontends"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for the model (default: all)"
    )
    parser.add_argument(
        "--min-duration", type=float, default=0.5, help="minimum seconds of speech per file"
    )
    parser.add_argument(
        "--max-duration", type=float, default=600.0, help="maximum seconds per file"
    )
    parser.set_defaults(func=run)


def _frontend_kwargs(args: argparse.Namespace) -> dict[str, object]:
    kwargs: dict[str, object] = {"device": args.device}
    if args.threads is not None:
        kwargs["num_threads"] = args.threads
    if args.model_path is not None:
        key = "model_dir" if args.frontend == "wavlm" else "model_path"
        kwargs[key] = args.model_path
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Extract, write the ``.npz``, print a summary and the failures."""
    from pathlib import Path

    from speakerrpl.data.audio_folders import discover_audio
    from speakerrpl.embeddings import extract_embeddings
    from speakerrpl.frontends import check_frontend_name, get_frontend

    check_frontend_name(args.frontend)
    utterances = discover_audio(args.data)
    kwargs = _frontend_kwargs(args)
    frontend = get_frontend(
        args.frontend, **{**kwargs, "device": "cpu" if args.ray else args.device}
    )
    engine = None
    if args.ray:
        from speakerrpl.embeddings.ray_extraction import RayEngine

        extra = {k: v for k, v in kwargs.items() if k != "device"}
        engine = RayEngine(args.ray, args.ray_actors, args.ray_gpus, extra)
    embeddings, failures = extract_embeddings(
        utterances,
        frontend,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        jobs=args.jobs,
        workers=args.workers,
        engine=engine,
        progress=sys.stderr.isatty(),
        min_duration=args.min_duration,
        max_duration=args.max_duration,
    )
    if len(embeddings) == 0 and len(failures) == 1:
        raise SpeakerRPLError(failures[0].reason)
    for failure in failures:
        print(f"speakerrpl embed: failed: {failure.utt_id}: {failure.reason}", file=sys.stderr)
    if len(embeddings) == 0:
        raise SpeakerRPLError(f"none of the {len(failures)} utterance(s) could be embedded")
    embeddings.save(args.out)
    speakers = len(set(embeddings.speakers.tolist()))
    print(
        f"wrote {Path(args.out)}: {len(embeddings)} embeddings of dim {embeddings.dim} "
        f"({speakers} speakers, frontend {frontend.name}); {len(failures)} failed"
    )
    return 1 if failures else 0
