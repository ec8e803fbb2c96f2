"""The ``coursekit`` command: list topics, run notebooks, build the course, manage data."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from coursekit.core import data
from coursekit.core.runtime import SCALES
from coursekit.tooling.grading.sandbox import SandboxUnavailable

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _cmd_list(args: argparse.Namespace) -> int:
    from coursekit.tooling.course import topics

    table = topics().reset_index()
    if args.json:
        import json

        columns = ["number", "slug", "title", "slides", "papers", "notebook", "available", "modules"]
        print(json.dumps(table[columns].to_dict(orient="records"), indent=1, ensure_ascii=False))
        return 0
    table["available"] = table["available"].map({True: "", False: "(planned)"})
    table["modules"] = table["modules"].map(", ".join)
    table["number"] = table["number"].map("{:02d}".format)  # as the notebooks are numbered
    rows = [["#", "title", "slides", "notebook", "", "modules"]]
    rows += [[str(v) for v in r] for r in table[["number", "title", "slides", "notebook", "available", "modules"]]
             .itertuples(index=False)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from coursekit.tooling.notebooks import run

    params = dict(args.param or [])
    out = run(args.notebook, args.output, args.scale, params, timeout=args.timeout,
              notebook_timeout=args.notebook_timeout)
    print(f"executed {args.notebook} at {args.scale} scale → {out}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from coursekit.tooling.notebooks import record_expected, run

    for notebook in args.notebooks:
        out = run(notebook, None, "ci")
        print(f"{notebook}: expected outputs → {record_expected(out, notebook)}")
    return 0


def _cmd_course(args: argparse.Namespace) -> int:
    from coursekit.tooling.notebooks import build_course

    report = build_course(args.scale, args.output, timeout=args.timeout, notebook_timeout=args.notebook_timeout)
    print(report.to_string(index=False))
    return 0 if (report["status"] == "ok").all() else 1


def _cmd_site(args: argparse.Namespace) -> int:
    from coursekit.tooling.site import build_site

    report = build_site(args.scale, args.output, timeout=args.timeout, notebook_timeout=args.notebook_timeout)
    print(report.to_string(index=False))
    print(f"site → {args.output}/index.html (with search: python -m http.server -d {args.output}, then "
          "http://127.0.0.1:8000)")
    return 0 if (report["status"] == "ok").all() else 1


def _cmd_slides(args: argparse.Namespace) -> int:
    from coursekit.tooling import slides

    executed = slides.executed_lectures(args.scale, timeout=args.timeout, notebook_timeout=args.notebook_timeout)
    for page in slides.export(executed, args.output, args.reveal_prefix or slides.CDN_REVEAL):
        print(page)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    names = args.names or list(data.DATASETS)
    for name in names:
        if name not in data.DATASETS:
            raise ValueError(f"unknown data set {name!r}; expected one of {data.DATASETS}")
    if args.action == "fetch":
        required = set(args.names or ["fashion_mnist", "mnist1d", "digits"])
        for name in names:
            try:
                print(f"{name:14s} {data.ensure(name, allow_download=not args.no_download)}")
            except FileNotFoundError:
                if name in required:
                    raise
                print(f"{name:14s} not present (optional; see data/README.md)")
        return 0
    for name in names:
        if name in data.IDX_SOURCES:
            how = (f"run `coursekit data fetch {name}`" if data.IDX_SOURCES[name].sha256
                   else f"place its IDX files in {data.REPO_DATA / name}")
            print(f"{name:14s} {data.locate(name) or 'missing: ' + how}")
        else:
            print(f"{name:14s} {data.ensure(name)}")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from coursekit.tooling.grading.grade import Limits
    from coursekit.tooling.grading.release import release

    student, bundle = release(args.lab, args.output, Limits(cell_timeout=args.cell_timeout))
    print(f"released {args.lab}: student notebook {student}\n  grader bundle (keep it private) {bundle}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from coursekit.tooling.grading.grade import Limits, grade_batch

    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    memory_bytes=int(args.memory_gb * 2**30))
    book = grade_batch(args.bundle, args.submissions, args.output, jobs=args.jobs, force=args.force,
                       limits=limits, sandboxed=not args.no_sandbox)
    print(book.to_string(index=False))
    print(f"gradebook → {args.output}/gradebook.csv; what the grader noticed → {args.output}/report.md")
    return 0


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"parameter {text!r} must look like NAME=VALUE")
    import ast

    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _add_limits(p: argparse.ArgumentParser) -> None:
    from coursekit.tooling.notebooks import CELL_TIMEOUT, NOTEBOOK_TIMEOUT

    def per_scale(limits):
        return ", ".join(f"{k} {v} s" for k, v in limits.items())

    p.add_argument("--timeout", type=_positive(int), default=None,
                   help=f"seconds a cell may run before the run stops (default by scale: {per_scale(CELL_TIMEOUT)})")
    p.add_argument("--notebook-timeout", type=_positive(int), default=None,
                   help=f"seconds a whole notebook may run (default by scale: {per_scale(NOTEBOOK_TIMEOUT)})")


def _every_lecture(sub, name: str, func, output: str, help: str) -> argparse.ArgumentParser:
    """A command that executes every lecture at a scale: --scale, -o and the run limits."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--scale", choices=SCALES, default="ci")
    p.add_argument("-o", "--output", default=output, help=f"output folder (default: {output})")
    _add_limits(p)
    p.set_defaults(func=func)
    return p


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="coursekit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="the course's topics, their notebooks and their modules")
    ls.add_argument("--json", action="store_true", help="print the topics as JSON, for scripts")
    ls.set_defaults(func=_cmd_list)

    r = sub.add_parser("run", help="execute a notebook with papermill at a scale")
    r.add_argument("notebook", help="path to a .ipynb file")
    r.add_argument("--scale", choices=SCALES, default="ci", help="size of the experiment (default: ci)")
    r.add_argument("-o", "--output", help="where the executed copy goes (default: build/SCALE/NAME)")
    r.add_argument("-p", "--param", action="append", type=_param, metavar="NAME=VALUE",
                   help="another parameter for the notebook's parameters cell (repeatable)")
    _add_limits(r)
    r.set_defaults(func=_cmd_run)

    _every_lecture(sub, "course", _cmd_course, "build", "execute every lecture and render HTML into build/")
    _every_lecture(sub, "site", _cmd_site, "build/site", "execute every lecture and build the course's static "
                   "website (MkDocs; offline; broken links fail the build)")
    sl = _every_lecture(sub, "slides", _cmd_slides, "build/slides", "export every lecture, executed at a scale, as "
                        "static reveal.js slides (live slides: open a lecture in JupyterLab and press RISE's button)")
    sl.add_argument("--reveal-prefix", default=None, help="where the pages load reveal.js 4 from: a URL or a "
                    "local folder (default: a CDN, so the pages need a network)")

    e = sub.add_parser("record-outputs", help="run notebooks at ci scale and record the outputs "
                       "of their '# NBVAL_CHECK_OUTPUT' cells as nbval's expected outputs")
    e.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    e.set_defaults(func=_cmd_record)

    rl = sub.add_parser("release", help="test a lab and write the student notebook and grader bundle")
    rl.add_argument("lab", help="the lab folder, e.g. labs/lab01_lottery")
    rl.add_argument("-o", "--output", default="release", help="output folder (default: release)")
    rl.add_argument("--cell-timeout", type=_positive(int), default=120,
                    help="seconds each cell of the solution may run while the release is tested (default 120)")
    rl.set_defaults(func=_cmd_release)

    g = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    g.add_argument("bundle", help="the grader bundle folder written by `coursekit release`")
    g.add_argument("submissions", help="folder of submitted .ipynb files (one per student)")
    g.add_argument("-o", "--output", default="grades", help="grades folder (default: grades)")
    g.add_argument("-j", "--jobs", type=_positive(int), default=1, help="submissions graded at once")
    g.add_argument("--force", action="store_true", help="re-grade submissions already graded")
    g.add_argument("--cell-timeout", type=_positive(int), default=60,
                   help="the most seconds any cell may run (default 60); below it, a cell may run 30 s plus "
                        "10 times what the solution's cell took")
    g.add_argument("--notebook-timeout", type=_positive(int), default=600,
                   help="seconds per notebook (default 600)")
    g.add_argument("--memory-gb", type=_positive(float), default=4.0, help="memory per submission (GiB)")
    g.add_argument("--no-sandbox", action="store_true",
                   help="grade without the bubblewrap sandbox (where it cannot run); every feedback "
                        "file and the gradebook say so")
    g.set_defaults(func=_cmd_grade)

    d = sub.add_parser("data", help="where the data sets are; fetch them")
    d.add_argument("action", choices=("where", "fetch"))
    d.add_argument("names", nargs="*", metavar="NAME", help=f"data sets (default: all of {data.DATASETS})")
    d.add_argument("--no-download", action="store_true", help="never download, only find or install")
    d.set_defaults(func=_cmd_data)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, SandboxUnavailable) as err:
        print(f"coursekit: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as err:  # site.build_site: MkDocs refused the site, or a link leads nowhere
        print(f"coursekit: {err}", file=sys.stderr)
        return 1
    except TimeoutError as err:  # notebooks.RunTimeout: a notebook ran past its limit
        print(f"coursekit: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `coursekit list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
