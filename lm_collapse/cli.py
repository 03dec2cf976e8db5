"""``lm-collapse``: the command line. Each subcommand imports its heavy modules only when run.

Bad input (a missing or unreadable file, a malformed line, an unknown name, a config error, a run
folder that cannot be used, an extra not installed, the hub out of reach) is one line on stderr
naming the problem, exit status 2, never a traceback; set ``LM_COLLAPSE_TRACEBACK=1`` to see one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


def _parse_options(pairs: Sequence[str]) -> dict[str, dict]:
    """``["self_bleu_4.sample_size=1000"]`` → ``{"self_bleu_4": {"sample_size": 1000}}``."""
    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        metric, dot, option = key.partition(".")
        if not sep or not dot or not metric or not option:
            raise ValueError(f"--option expects METRIC.KEY=VALUE, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options.setdefault(metric, {})[option] = parsed
    return options


def _format_table(rows: dict[str, dict[str, float]]) -> str:
    from .report.tables import Table, to_markdown

    names = list(next(iter(rows.values())))
    body = [[label, *("undefined" if row[m] != row[m] else f"{row[m]:.4f}" for m in names)] for label, row in rows.items()]
    return to_markdown(Table(["file", *names], body, ""))


def cmd_metrics(args: argparse.Namespace) -> int:
    """Metrics of text files: a table, or JSON. A metric undefined on a file (a ratio with no n-gram to
    count, 0/0: a file of punctuation only) is ``undefined`` in the table and ``null`` in the JSON."""
    from metrics.score import DEFAULT_METRICS, check_options, resolve, score
    from recursion.artifacts import read_texts

    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics is not None else list(DEFAULT_METRICS)
    if not names:
        raise ValueError(f"--metrics {args.metrics!r} names no metric; e.g. --metrics {','.join(DEFAULT_METRICS[:3])}")
    for name in names:
        resolve(name)
    options = _parse_options(args.option)
    check_options(names, options)
    reference = read_texts(args.reference, args.field, encoding=args.encoding) if args.reference else None
    corpora = {path: read_texts(path, args.field, encoding=args.encoding) for path in args.files}  # every file read first
    for path, texts in corpora.items():
        if not texts:
            raise ValueError(f"{path}: no texts (the file is empty)")
    rows = {}
    for path, texts in corpora.items():
        try:
            rows[path] = score(texts, names, reference_texts=reference, options=options, progress=not args.quiet,
                               undefined=float("nan"))
        except (TypeError, ValueError) as e:  # a metric refusing this corpus or an option's value
            raise ValueError(f"{path}: {e}") from None
    if args.format == "json":
        print(json.dumps({p: {m: None if v != v else v for m, v in row.items()} for p, row in rows.items()}, indent=2))
    else:
        print(_format_table(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from recursion.driver import run_experiment

    if args.format == "json" and not args.dry_run:
        raise ValueError("--format json prints the resolved configs of a --dry-run; add --dry-run")
    as_json = args.format == "json"
    log = (lambda line: print(line, file=sys.stderr)) if as_json else print
    folders = run_experiment(args.config, args.run_dir, overrides=args.set, resume=args.resume, dry_run=args.dry_run,
                             arm=args.arm, seed=args.seed, break_lock=args.break_lock, log=log)
    if as_json:  # every arm's resolved config, every default filled in
        from recursion.loader import load_config, to_dict

        print(json.dumps({arm: to_dict(exp) for arm, exp in load_config(args.config, args.set).items()}, indent=2))
        return 0
    print(("ready to run (config, data, tasks and folders checked); would write " if args.dry_run else "finished: ")
          + ", ".join(map(str, folders)))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from recursion.sweep import summary, sweep

    outcomes = sweep(args.config, args.run_dir, overrides=args.set, address=args.address,
                     gpus_per_replica=args.gpus_per_replica, resume=args.resume, retries=args.retries,
                     break_lock=args.break_lock)
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

    for name in ("k", "num_direct", "turns"):  # before the model loads
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.threshold <= 1:
        raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
    gen_kwargs = simple_parse_args_string(args.gen_kwargs or "")
    prompt = vs_demo.resolve_prompt(args.prompt)
    lm = vs_demo.load_model(args.model, args.model_args, device=args.device, batch_size=args.batch_size)
    result = vs_demo.run(
        lm, prompt, form=args.form, k=args.k, num_direct=args.num_direct, turns=args.turns,
        threshold=args.threshold, seed=args.seed, gen_kwargs=gen_kwargs,
    )
    print(vs_demo.format_result(result))
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recursion import theory

    if args.plot:
        from .report.theory_plot import FIGURE_SUFFIXES

        if Path(args.plot).suffix not in FIGURE_SUFFIXES or not Path(args.plot).parent.is_dir():
            raise ValueError(f"--plot {args.plot}: expected a {', '.join(FIGURE_SUFFIXES)} file in an existing folder")
    setup = theory.Setup(args.d, args.T, args.sigma, args.generations, theory.parse_spectrum(args.spectrum))
    regimes = theory.parse_regimes(args.regimes)
    learners = theory.parse_learners(args.ridge, args.adaptive)
    records = theory.run(setup, regimes, learners, reps=args.reps, seed=args.seed)
    if args.plot:
        from .report.theory_plot import theory_figure

        title = f"Linear regression on its own labels: d={args.d}, T={args.T}, σ={args.sigma:g}, {args.reps} runs"
        theory_figure(records, args.plot, title=title, null_error=theory.null_error(setup, args.seed))
    print(json.dumps(records, indent=2) if args.format == "json" else theory.format_table(records))
    return 0


BREAK_LOCK = ("take over replica locks held by a process of another host (a node that died, whose heartbeat is "
              "not yet stale); a running process of this host is never overridden")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lm-collapse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("metrics", help="diversity metrics of text files (JSONL or one text per line)")
    m.add_argument("files", nargs="+", help=".jsonl files (one record per text) or plain text files")
    m.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    m.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: utf-8), e.g. latin-1")
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
    r.add_argument("--dry-run", action="store_true",
                   help="check everything a run needs (config, data, tasks, run folders) and print the plan; run nothing")
    r.add_argument("--format", choices=("text", "json"), default="text",
                   help="with --dry-run: json prints every arm's fully resolved config (every default filled in)")
    r.add_argument("--arm", help="run this arm only (default: every arm)")
    r.add_argument("--seed", type=int, help="run this seed only (default: every seed); with --arm, exactly one replica")
    r.add_argument("--break-lock", dest="break_lock", action="store_true", help=BREAK_LOCK)
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("sweep", help="every replica (arm x seed) as its own Ray task, one per GPU; resumable")
    w.add_argument("config", help="experiment YAML (see configs/)")
    w.add_argument("--run-dir", help="output folder (default: runs/<name>); finished replicas in it are skipped")
    w.add_argument("--address", help="a Ray cluster: ray://HEAD:10001 or auto (default: a local Ray over this machine)")
    w.add_argument("--gpus-per-replica", dest="gpus_per_replica", type=float, default=1,
                   help="GPUs each replica asks Ray for, in (0, 1] (default: 1; 0.25: four replicas per GPU; "
                   "without GPUs, runtime.threads CPUs)")
    w.add_argument("--retries", type=int, default=3,
                   help="times Ray reruns a replica whose worker or node died; it resumes (default: 3)")
    w.add_argument("--break-lock", dest="break_lock", action="store_true", help=BREAK_LOCK)
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

    t = sub.add_parser("theory", help="the regression model of collapse: closed-form vs simulated test error (seconds)")
    t.add_argument("--regimes", default="replace,accumulate,mix:0.5",
                   help="comma-separated: replace, accumulate, mix:P with P the SYNTHETIC share of each generation's "
                   "data (default: replace,accumulate,mix:0.5)")
    t.add_argument("--generations", type=int, default=10, help="generations after generation 0 (default: 10)")
    t.add_argument("--d", type=int, default=50, help="input dimension (default: 50)")
    t.add_argument("--T", type=int, default=200, help="samples per generation, >= d + 2 (default: 200)")
    t.add_argument("--sigma", type=float, default=1.0, help="label-noise standard deviation (default: 1)")
    t.add_argument("--spectrum", default="isotropic", help="input covariance: isotropic or power:ALPHA (default: isotropic)")
    t.add_argument("--reps", type=int, default=200, help="simulated independent chains (default: 200)")
    t.add_argument("--ridge", metavar="LAMBDA[,LAMBDA...]", help="ridge learners evaluated beside least squares")
    t.add_argument("--adaptive", action="store_true",
                   help="the adaptive ridge learner beside least squares (λ grows with the inherited synthetic error)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--format", choices=("table", "json"), default="table")
    t.add_argument("--plot", metavar="OUT.png", help="also write the figure (.png, .pdf or .svg)")
    t.set_defaults(func=cmd_theory)
    return parser


def _message(err: BaseException) -> list[str]:
    """The lines that say what went wrong: one, or one per problem of a config."""
    from recursion.loader import ConfigError
    from recursion.messages import first_line

    if isinstance(err, ConfigError) and len(err.problems) > 1:
        return [f"{len(err.problems)} config errors:", *(f"  - {p}" for p in err.problems)]
    if isinstance(err, ConnectionError):
        return [f"the network cannot be reached (offline? {first_line(err)})"]
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return [f"{err.filename}: {err.strerror}"]
    return [first_line(err)]


def _fail(command: str, err: BaseException) -> int:
    if os.environ.get("LM_COLLAPSE_TRACEBACK"):
        raise err
    lines = _message(err)
    print(f"lm-collapse {command}: error: {lines[0]}", *lines[1:], sep="\n", file=sys.stderr)
    return 2


#: Exceptions that mean bad input or an unusable environment: reported in one line, exit status 2.
USER_ERRORS = (ValueError, OSError, ImportError)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:  # every other argument belongs to lm-eval's parser
        from .eval import main as eval_main

        try:
            return eval_main(argv[1:])
        except USER_ERRORS as e:
            return _fail("eval", e)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        return _fail(args.command, e)


if __name__ == "__main__":
    sys.exit(main())
