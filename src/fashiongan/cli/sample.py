"""`fashiongan generate`, `interpolate`, `export` and `serve`: the commands that sample a
trained generator."""

import sys
from pathlib import Path

from fashiongan.cli.common import add_generator_args, ema_flag, memory_bytes, seed_arg
from fashiongan.errors import FashionGANError


def generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="sample images into a grid or a data set")
    add_generator_args(p, "class name or id; repeat for several (default: all classes)")
    p.add_argument("--out", required=True, help="output file (.png, .npz, .csv) or directory")
    p.add_argument(
        "--format",
        help="png (grid) | pngs (folder per class) | npz | idx | csv "
        "(default: from --out's extension)",
    )
    p.add_argument(
        "--layout",
        default="classes",
        choices=["classes", "flat"],
        help="pngs: a sub-folder per class, or flat: every PNG in --out with labels.csv beside, "
        "as pytorch-fid, clean-fid and torch-fidelity read a folder (default: classes)",
    )
    p.add_argument("--num-samples", type=int, default=100, help="images in all (default: 100)")
    p.add_argument("--per-class", type=int, help="images per class (overrides --num-samples)")
    p.add_argument("--seed", type=seed_arg, default=0, help="latent seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=1000, help="generation batch (default: 1000)")
    p.add_argument(
        "--force", action="store_true", help="replace an existing --out file of another kind"
    )
    p.add_argument("--size", type=int, help="resize outputs to SIZE×SIZE (e.g. 28 for dcgan64)")
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def interpolate_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="latent walks between seeds or classes")
    add_generator_args(p, "one: walk within this class; two or more: walk across them with z fixed")
    p.add_argument("--out", required=True, help="walk.png (strip, a row per walk) or walk.gif")
    p.add_argument(
        "--seeds",
        type=seed_arg,
        nargs="+",
        default=[0, 1, 2, 3],
        help="walk from each seed to the next (default: 0 1 2 3)",
    )
    p.add_argument("--steps", type=int, default=10, help="frames per walk (default: 10)")
    p.add_argument(
        "--mode",
        default="slerp",
        choices=["slerp", "lerp"],
        help="spherical or linear interpolation of z (default: slerp)",
    )


def export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="write a trained generator as a portable, code-free weights file"
    )
    p.add_argument("source", help="run directory or checkpoint file")
    p.add_argument(
        "--out", required=True, help="generator.safetensors, generator.onnx or a new directory"
    )
    p.add_argument(
        "--format",
        default="safetensors",
        choices=["safetensors", "onnx", "dir"],
        help="safetensors: G's weights with the run's settings as metadata; onnx: a graph for "
        "ONNX Runtime (dynamic batch; the onnx extra); dir: a model directory with weights, "
        "config.json and a model card (README.md). `generate`, `evaluate`, `serve` and "
        "load_generator() read safetensors and dir (default: safetensors)",
    )
    ema_flag(p, "export")


def serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="an HTTP API and a web page over trained generators (the serve extra)"
    )
    p.add_argument(
        "sources", nargs="+", help="run directories, checkpoints or .safetensors; each is a model"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--max-n", type=int, default=1024, help="most images per request (default: 1024)"
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def cmd_generate(args) -> int:
    from fashiongan.data.datasets import resize_images
    from fashiongan.dataset_export import check_output, export, infer_format
    from fashiongan.devices import pick_device
    from fashiongan.sampling import latents, load_generator

    out = Path(args.out)
    fmt = infer_format(out, args.format)
    if args.layout != "classes" and fmt != "pngs":
        raise FashionGANError(f"--layout {args.layout} is for --format pngs, not {fmt}; drop it")
    for name, value in (
        ("--num-samples", args.num_samples),
        ("--batch-size", args.batch_size),
        ("--per-class", args.per_class),
        ("--size", args.size),
    ):
        if value is not None and value < 1:
            raise FashionGANError(f"{name} {value}: must be at least 1")
    check_output(out, fmt, args.force)
    gen = load_generator(args.source, ema=args.ema, device=pick_device(args.device))
    n_classes = len(args.classes or gen.class_names) if gen.conditional else 1
    n = args.per_class * n_classes if args.per_class else args.num_samples
    side = args.size or gen.resolution
    need = n * (gen.z_dim * 4 + max(side, gen.resolution) ** 2)  # latents (float32) + images
    if need > memory_bytes() // 2:
        what = f"--per-class {args.per_class}" if args.per_class else f"--num-samples {n}"
        raise FashionGANError(
            f"{what}: {n} images need ~{need / 1e9:.1f} GB in memory, more than half of this "
            f"machine's {memory_bytes() / 1e9:.0f} GB; generate it in parts (--seed 0, 1, ...)"
        )
    y = gen.labels(args.classes, n=args.num_samples, per_class=args.per_class)
    n = len(y) if y is not None else args.num_samples
    images = gen.images(latents(args.seed, n, gen.z_dim), y, args.batch_size)
    if args.size:
        images = resize_images(images, args.size)
    ncol = args.per_class or min(n, 10)
    labels = None if y is None else y.numpy()
    written = export(out, images.numpy(), labels, fmt, gen.class_names, ncol, args.layout)
    where = out if len(written) > 1 or fmt in ("idx", "pngs") else written[0]
    print(
        f"wrote {n} images ({fmt}, {images.shape[-1]}×{images.shape[-1]}) to {where} "
        f"from step {gen.step} ({'EMA' if args.ema else 'raw'} generator)"
    )
    return 0


def cmd_export(args) -> int:
    from fashiongan.checkpoint import load_checkpoint, resolve_checkpoint
    from fashiongan.model_export import export_generator
    from fashiongan.sampling import load_generator

    ckpt = resolve_checkpoint(args.source)
    state = load_checkpoint(ckpt)
    gen = load_generator(ckpt, ema=args.ema)  # the weights must fit their model before they leave
    what = f"{'EMA' if args.ema and state.get('G_ema') is not None else 'raw'} generator"
    if args.format == "onnx":
        from fashiongan.onnx_export import TOLERANCE, export_onnx

        check = export_onnx(gen, args.out)
        print(
            f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB, {what} of step "
            f"{state['step']}); "
            + (
                f"ONNX Runtime matches PyTorch on {check['samples']} samples: max |Δ| "
                f"{check['max_abs_diff']:.1e} (tolerance {TOLERANCE:g})"
                if check
                else "not checked: onnxruntime is not installed"
            )
        )
        return 0
    if args.format == "dir":
        from fashiongan.model_card import export_model_dir

        metrics = _run_metrics(ckpt, int(state["step"]))
        out = export_model_dir(state, args.out, ema=args.ema, metrics=metrics)
        print(
            f"wrote {out}/ (model.safetensors, config.json, README.md"
            f"{', metrics.json' if metrics else ''}; {what} of step {state['step']}); load it "
            f"with fashiongan.load_generator({str(out)!r}) or fashiongan serve {out}"
        )
        return 0
    ema = export_generator(state, args.out, ema=args.ema)
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.2f} MB, {'EMA' if ema else 'raw'} generator of step "
        f"{state['step']} from {ckpt}); load it with fashiongan generate {args.out} or "
        f"fashiongan.load_generator({str(args.out)!r})"
    )
    return 0


def _run_metrics(ckpt: Path, step: int) -> dict | None:
    """RUN/eval/metrics.json of the checkpoint's run, when it scored this step's generator."""
    import json

    path = ckpt.parent.parent / "eval" / "metrics.json"
    if ckpt.parent.name != "checkpoints" or not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("provenance", {}).get("generator_step") == step else None


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from fashiongan.serve.app import MAX_DRAIN, create_app
    except ImportError as e:
        raise FashionGANError(
            f"serve needs the serve extra ({e.name} is missing): pip install 'fashiongan[serve]'"
        ) from None
    from fashiongan.devices import pick_device
    from fashiongan.sampling import load_generator

    if not 1 <= args.max_n <= 100_000:
        raise FashionGANError(f"--max-n {args.max_n}: expected 1..100000")
    if not 0 <= args.port <= 65535:
        raise FashionGANError(f"--port {args.port}: expected 0..65535")
    device = pick_device(args.device)
    generators = [(Path(s), load_generator(s, device=device)) for s in args.sources]
    app = create_app(generators, max_n=args.max_n)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: --host {args.host} makes the server reachable from other machines; it "
            f"has no authentication",
            file=sys.stderr,
        )
    for (src, gen), mid in zip(generators, app.state.served):
        print(f"model {mid}: {src} (step {gen.step}, {len(gen.class_names)} classes)")
    print(f"serving on http://{args.host}:{args.port}/  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        h11_max_incomplete_event_size=MAX_DRAIN,  # answer 414, not a reset (serve.app)
    )
    return 0


def cmd_interpolate(args) -> int:
    from fashiongan.data.datasets import parse_class
    from fashiongan.imaging import save_interpolation
    from fashiongan.sampling import interpolation_frames, load_generator

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "gif"):
        raise FashionGANError(f"--out {out}: expected a .png (strip) or .gif (animation) name")
    gen = load_generator(args.source, ema=args.ema)
    classes = [parse_class(c, gen.class_names) for c in args.classes] if args.classes else None
    frames = interpolation_frames(gen, args.seeds, classes, args.steps, args.mode)
    save_interpolation(out, frames, fmt)
    print(f"wrote {frames.shape[0]} walks × {frames.shape[1]} frames to {out}")
    return 0
