"""``lm-collapse``: the command line. Each subcommand imports its heavy modules only when run."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _parse_options(pairs: Sequence[str]) -> dict[str, dict]:
    """``["self_bleu_4.sample_size=1000"]`` → ``{"self_bleu_4": {"sample_size": 1000}}``."""
    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        metric, dot, option = key.partition(".")
        if not sep or not dot or not metric or not option:
            raise SystemExit(f"lm-collapse: --option expects METRIC.KEY=VALUE, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options.setdefault(metric, {})[option] = parsed
    return options


def _format_table(rows: dict[str, dict[str, float]]) -> str:
    from .report.tables import Table, to_markdown

    names = list(next(iter(rows.values())))
    body = [[label, *(f"{row[m]:.4f}" for m in names)] for label, row in rows.items()]
    return to_markdown(Table(["file", *names], body, ""))


def cmd_metrics(args: argparse.Namespace) -> int:
    from metrics.score import DEFAULT_METRICS, resolve, score
    from recursion.artifacts import read_texts

    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else list(DEFAULT_METRICS)
    for name in names:
        resolve(name)
    options = _parse_options(args.option)
    reference = read_texts(args.reference, args.field) if args.reference else None
    rows = {}
    for path in args.files:
        texts = read_texts(path, args.field)
        rows[path] = score(texts, names, reference_texts=reference, options=options, progress=not args.quiet)
    print(json.dumps(rows, indent=2) if args.format == "json" else _format_table(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick)
    return 0


def _config_error(command: str, problems: list[str]) -> int:
    if len(problems) == 1:
        print(f"lm-collapse {command}: config error: {problems[0]}", file=sys.stderr)
    else:
        print(f"lm-collapse {command}: {len(problems)} config errors:", *(f"  - {p}" for p in problems), sep="\n",
              file=sys.stderr)
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    from recursion.config import ConfigError
    from recursion.driver import run_experiment

    try:
        folders = run_experiment(args.config, args.run_dir, overrides=args.set, resume=args.resume, dry_run=args.dry_run,
                                 arm=args.arm, seed=args.seed)
    except ConfigError as e:
        return _config_error("run", e.problems)
    except ValueError as e:
        print(f"lm-collapse run: error: {e}", file=sys.stderr)
        return 2
    print(("validated; would write " if args.dry_run else "finished: ") + ", ".join(map(str, folders)))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from recursion.config import ConfigError
    from recursion.sweep import summary, sweep

    try:
        outcomes = sweep(args.config, args.run_dir, overrides=args.set, address=args.address,
                         gpus_per_replica=args.gpus_per_replica, resume=args.resume)
    except ConfigError as e:
        return _config_error("sweep", e.problems)
    print(summary(outcomes))
    return 1 if any(o.status.startswith("failed") for o in outcomes) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    report = build_report(args.run_dirs, args.out, formats=formats, plots_on=not args.no_plots)
    print(report.key_table)
    if report.problems:
        print(f"\n{len(report.problems)} problem(s) noted in the report (missing or unreadable files).")
    print(f"\nreport: {report.path}")
    return 0


def cmd_vs_demo(args: argparse.Namespace) -> int:
    from lm_eval.utils import simple_parse_args_string

    from . import vs_demo

    prompt = vs_demo.resolve_prompt(args.prompt)
    lm = vs_demo.load_model(args.model, args.model_args, device=args.device, batch_size=args.batch_size)
    result = vs_demo.run(
        lm, prompt, form=args.form, k=args.k, num_direct=args.num_direct, turns=args.turns,
        threshold=args.threshold, seed=args.seed, gen_kwargs=simple_parse_args_string(args.gen_kwargs or ""),
    )
    print(vs_demo.format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lm-collapse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("metrics", help="diversity metrics of text files (JSONL or one text per line)")
    m.add_argument("files", nargs="+", help=".jsonl files (one record per text) or plain text files")
    m.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    m.add_argument("--metrics", help="comma-separated metric names (default: the fast lexical set)")
    m.add_argument("--reference", help="training corpus for memorization_<n> (same formats)")
    m.add_argument("--option", action="append", default=[], metavar="METRIC.KEY=VALUE",
                   help="per-metric option, e.g. self_bleu_4.sample_size=1000 (repeatable)")
    m.add_argument("--format", choices=("table", "json"), default="table")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=cmd_metrics)

    r = sub.add_parser("run", help="the recursion driver: train -> generate -> select -> retrain, resumable")
    r.add_argument("config", help="experiment YAML (see configs/)")
    r.add_argument("--run-dir", help="output folder (default: runs/<name>); rerunning continues it")
    r.add_argument("--resume", action="store_true", help="continue an existing run folder (error if there is none)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set generations=3 --set model.alpha=0.1 (repeatable)")
    r.add_argument("--dry-run", action="store_true", help="validate the config and print the plan; run nothing")
    r.add_argument("--arm", help="run this arm only (default: every arm)")
    r.add_argument("--seed", type=int, help="run this seed only (default: every seed); with --arm, exactly one replica")
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("sweep", help="every replica (arm x seed) as its own Ray task, one per GPU; resumable")
    w.add_argument("config", help="experiment YAML (see configs/)")
    w.add_argument("--run-dir", help="output folder (default: runs/<name>); finished replicas in it are skipped")
    w.add_argument("--address", help="a Ray cluster: ray://HEAD:10001 or auto (default: a local Ray over this machine)")
    w.add_argument("--gpus-per-replica", dest="gpus_per_replica", type=float, default=1,
                   help="GPUs each replica asks Ray for (default: 1; without GPUs, runtime.threads CPUs)")
    w.add_argument("--resume", action="store_true", help="continue an existing run folder (error if there is none)")
    w.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    w.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV), plots and samples of run folders")
    p.add_argument("run_dirs", nargs="+", help="run folders (an experiment, an arm or a replica)")
    p.add_argument("--out", help="output folder (default: FIRST_RUN_DIR/report)")
    p.add_argument("--format", default="md,latex,csv", help="comma-separated: md, latex, csv (default: all)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.set_defaults(func=cmd_report)

    sub.add_parser(
        "eval", add_help=False,
        help="lm-eval's command line with the collapse_* tasks, our metrics and models added "
        "(same arguments as lm_eval; see `lm-collapse eval --help`)",
    )

    d = sub.add_parser("demo", help="collapse on a laptop in minutes: two small experiments, scored and reported")
    d.add_argument("--out", default="demo_out", help="output folder (default: demo_out); rerunning continues it")
    d.add_argument("--quick", action="store_true", help="a smoke-test size (about a minute), as run in CI")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("vs-demo", help="mode collapse in one prompt: direct answers vs Verbalized Sampling candidates")
    v.add_argument("--model", default="hf", help="lm-eval model name (default: hf)")
    v.add_argument("--model_args", help="lm-eval model arguments, e.g. pretrained=HuggingFaceTB/SmolLM2-1.7B-Instruct")
    v.add_argument("--prompt", help="the request, or the id of a shipped prompt (joke_01 .. story_10; default: joke_01)")
    v.add_argument("--form", choices=("standard", "cot", "xml", "multi"), default="standard",
                   help="Verbalized Sampling form; multi is a real multi-turn conversation (default: standard)")
    v.add_argument("--k", type=int, default=5, help="candidates asked for (per turn for multi; default: 5)")
    v.add_argument("--num-direct", dest="num_direct", type=int, default=5, help="direct samples (default: 5)")
    v.add_argument("--turns", type=int, default=2, help="turns of --form multi (default: 2)")
    v.add_argument("--threshold", type=float, default=0.10, help="tail threshold of --form xml (default: 0.10)")
    v.add_argument("--seed", type=int, default=0, help="seed of the generation and of the sampled candidate")
    v.add_argument("--gen_kwargs", help="generation settings, e.g. temperature=0.7,max_gen_toks=512")
    v.add_argument("--device", help="e.g. cuda:0, cpu (default: cuda when available, else cpu)")
    v.add_argument("--batch_size", type=int, default=8)
    v.set_defaults(func=cmd_vs_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:  # every other argument belongs to lm-eval's parser
        from .eval import main as eval_main

        try:
            return eval_main(argv[1:])
        except (ValueError, FileNotFoundError) as e:
            print(f"lm-collapse eval: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"lm-collapse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
