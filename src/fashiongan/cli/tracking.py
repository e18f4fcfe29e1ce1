"""`fashiongan tensorboard`: a run's files as TensorBoard event files."""


def tensorboard_parser(sub) -> None:
    p = sub.add_parser(
        "tensorboard",
        help="write a run's metrics.jsonl, grids and config as TensorBoard event files",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="event folder (default: RUN/tensorboard)")
    p.add_argument("--force", action="store_true", help="replace an existing, non-empty --out")


def cmd_tensorboard(args) -> int:
    from fashiongan.tracking import convert_run

    out = convert_run(args.run, args.out, args.force)
    print(f"wrote TensorBoard events to {out}; view them with: tensorboard --logdir {out.parent}")
    return 0
