"""``explorer ci``: the GitHub Actions steps of the experiment repo, run on the recorded events of
``.github/events/`` against real git repositories, a real search and a real ``dvc metrics diff``.

GitHub itself is the one thing that cannot run here (this machine reaches no network but package
registries). The comment tests therefore talk to ``GitHubStandIn``: a ``ThreadingHTTPServer`` on
127.0.0.1 implementing the three REST endpoints the command uses (list an issue's comments, create
one, update one) the way GitHub does: a bearer token checked on every call, ``per_page`` capped at 2
so the ``Link: <...>; rel="next"`` pagination is exercised, 403 "Resource not accessible by
integration" for a read-only token. What it cannot prove is GitHub's own behaviour beyond that
contract; the recorded payloads are shaped like GitHub's webhook payloads.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from explorer.ci.comment import COMMENT_LIMIT, truncate
from explorer.ci.dvcdiff import dvc_executable
from explorer.ci.event import load_event
from explorer.ci.mermaid import coordinate, label, quadrant_chart
from explorer.ci.report import MARKER
from explorer.cli import main

from .services import free_port, unavailable

EVENTS = Path(__file__).resolve().parents[2] / ".github" / "events"
TOKEN = "ghs_standInT0kenThatMustNeverBePrinted0123"
REPO = "octo-lab/nas-experiment"

SPACE = """\
input: [3, 64]
output: 4
sequence:
  - block: features
    op_candidates: conv-block
    type_repeat: {{type: vary_all, depth: [1, 2]}}
  - block: head
    op_candidates: linear
default_op_params:
  conv1d: {{kernel_size: [3, 5], out_channels: [{channels}], activation: relu}}
composites:
  conv-block:
    sequence:
      - {{block: conv, op_candidates: conv1d}}
      - {{block: pool, op_candidates: [maxpool, identity]}}
"""
SPEC = """\
dataset: synthetic
spaces: [{spaces}]
search: {{sampler: random, seed: 0, trials: {trials}}}
train: {{epochs: 1, batch_size: 32, lr: 0.01}}
export: {{top_k: 1}}
criteria:
  - {{metric: accuracy, direction: maximize}}
  - {{metric: macs}}
"""


@pytest.fixture(autouse=True)
def _no_github_environment(monkeypatch, tmp_path):
    """These tests set what GitHub would set; nothing leaks in from a real Actions runner."""
    for name in ("GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_TOKEN",
                 "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))  # no user config, no signing
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")  # loopback only: DVC would report usage otherwise


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=CI Test", "-c", "user.email=ci@example.org", *args], cwd=root,
                          check=True, capture_output=True, text=True).stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def recorded(name: str, tmp_path: Path, **changes) -> Path:
    """A recorded payload with its placeholder commits replaced: ``base``/``head`` set the pull
    request's, ``before``/``after`` the push's."""
    payload = json.loads((EVENTS / f"{name}.json").read_text())
    if "base" in changes:
        payload["pull_request"]["base"]["sha"] = changes["base"]
    if "head" in changes:
        payload["pull_request"]["head"]["sha"] = changes["head"]
    for key in ("before", "after"):
        if key in changes:
            payload[key] = changes[key]
    path = tmp_path / f"{name}-event.json"
    path.write_text(json.dumps(payload))
    return path


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """An experiment repo: main has spaces a and b listed in params.yaml; branch ``wider`` changes a and
    adds c; after the branch point main changes b (a pull request must not claim that change)."""
    root = tmp_path / "repo"
    (root / "search_spaces").mkdir(parents=True)
    (root / "engine").mkdir()
    (root / "engine" / "NOTE.md").write_text("the engine\n")
    (root / "README.md").write_text("# experiment\n")
    (root / "params.yaml").write_text(SPEC.format(spaces="a, b", trials=4))
    (root / "search_spaces" / "a.yaml").write_text(SPACE.format(channels="4, 8"))
    (root / "search_spaces" / "b.yaml").write_text(SPACE.format(channels="4"))
    git(root, "init", "-q", "-b", "main")
    fork_point = commit_all(root, "two spaces")
    git(root, "checkout", "-q", "-b", "wider")
    (root / "search_spaces" / "a.yaml").write_text(SPACE.format(channels="4, 8, 16"))
    (root / "search_spaces" / "c.yaml").write_text(SPACE.format(channels="16"))
    first = commit_all(root, "wider a, new c")
    git(root, "checkout", "-q", "main")
    (root / "search_spaces" / "b.yaml").write_text(SPACE.format(channels="8"))
    main_tip = commit_all(root, "main moves on: b")
    git(root, "checkout", "-q", "wider")
    monkeypatch.chdir(root)
    return {"root": root, "fork_point": fork_point, "main": main_tip, "first": first}


def branch(repo: dict, name: str, files: dict[str, str | None]) -> str:
    """A new branch off the fork point with ``files`` written (None deletes); its head commit."""
    root = repo["root"]
    git(root, "checkout", "-q", "-b", name, repo["fork_point"])
    for path, text in files.items():
        if text is None:
            (root / path).unlink()
        else:
            (root / path).write_text(text)
    return commit_all(root, name)


# --- recorded events ---------------------------------------------------------------------------------


def test_recorded_events_are_shaped_like_githubs_payloads():
    names = {p.stem for p in EVENTS.glob("*.json")}
    assert names == {"pull_request-opened", "pull_request-synchronize", "pull_request-fork", "push-main",
                     "workflow_dispatch"}
    for path in EVENTS.glob("*.json"):
        assert "{{" not in path.read_text() and "{%" not in path.read_text()  # the folder is Jinja-rendered
    opened, sync, fork = (load_event(EVENTS / f"pull_request-{n}.json") for n in ("opened", "synchronize", "fork"))
    for event in (opened, sync, fork):
        pr = event.payload["pull_request"]
        assert event.kind == "pull_request" and event.payload["number"] == pr["number"]
        assert re.fullmatch(r"[0-9a-f]{40}", pr["base"]["sha"]) and re.fullmatch(r"[0-9a-f]{40}", pr["head"]["sha"])
        assert pr["base"]["repo"]["full_name"] == REPO and event.repository == REPO
        assert {"ref", "label", "user", "repo"} <= set(pr["head"]) and event.payload["sender"]["login"]
    assert opened.payload["action"] == "opened" and sync.payload["action"] == "synchronize"
    assert sync.payload["after"] == sync.payload["pull_request"]["head"]["sha"]  # GitHub sends before/after too
    assert opened.trusted and sync.trusted and not fork.trusted
    assert fork.payload["pull_request"]["head"]["repo"]["fork"] is True
    push = load_event(EVENTS / "push-main.json")
    assert push.kind == "push" and push.payload["ref"] == "refs/heads/main" and push.trusted
    assert push.payload["head_commit"]["id"] == push.payload["after"]
    dispatch = load_event(EVENTS / "workflow_dispatch.json")
    assert dispatch.kind == "other" and dispatch.name == "workflow_dispatch" and dispatch.trusted


def test_actrc_gives_act_flags_and_the_event_examples():
    actrc = (EVENTS.parents[1] / ".actrc").read_text()
    flags = [line for line in actrc.splitlines() if line.startswith("-")]  # act reads only these lines
    assert "-P ubuntu-latest=catthehacker/ubuntu:act-latest" in flags
    assert "--container-architecture linux/amd64" in flags
    for name in ("pull_request-opened", "pull_request-fork", "push-main", "workflow_dispatch"):
        assert f"--eventpath .github/events/{name}.json" in actrc
    assert "{{" not in actrc and "{%" not in actrc


# --- changed-spaces ----------------------------------------------------------------------------------


def test_opened_and_synchronize_find_exactly_the_changed_spaces(repo, tmp_path, capsys, monkeypatch):
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    event = recorded("pull_request-opened", tmp_path, base=repo["main"], head=repo["first"])
    code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert code == 0, err
    assert json.loads(out) == {"space": ["a", "c"]}  # b changed on main only: merge-base semantics
    assert "search_spaces/c.yaml: not listed in params.yaml" in err
    assert outputs(github_output) == {"spaces": '{"space":["a","c"]}', "any": "true"}

    (repo["root"] / "search_spaces" / "b.yaml").write_text(SPACE.format(channels="4, 16"))
    second = commit_all(repo["root"], "and b")
    github_output.unlink()
    event = recorded("pull_request-synchronize", tmp_path, base=repo["main"], head=second, before=repo["first"],
                     after=second)
    code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert code == 0, err
    assert json.loads(out) == {"space": ["a", "b", "c"]}  # the whole pull request, not only the new push
    assert outputs(github_output)["spaces"] == '{"space":["a","b","c"]}'


def test_spec_or_engine_change_searches_every_listed_space(repo, tmp_path, capsys):
    for name, path in (("spec", "params.yaml"), ("engine", "engine/NOTE.md")):
        text = SPEC.format(spaces="a, b", trials=9) if path == "params.yaml" else "a faster engine\n"
        head = branch(repo, name, {path: text})
        event = recorded("pull_request-opened", tmp_path, base=repo["main"], head=head)
        code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
        assert code == 0, err
        assert json.loads(out) == {"space": ["a", "b"]} and f"{path} changed" in err
    code, out, _ = run(["ci", "changed-spaces", "--event", str(event), "--all-on", "params.yaml"], capsys)
    assert json.loads(out) == {"space": []}  # engine/ no longer counts


def test_unrelated_deleted_or_invalid_changes_search_nothing(repo, tmp_path, capsys, monkeypatch):
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    head = branch(repo, "docs", {"README.md": "# experiment\n\nmore words\n",
                                 "search_spaces/notes.txt": "not a space\n"})
    event = recorded("pull_request-opened", tmp_path, base=repo["main"], head=head)
    code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert (code, json.loads(out)) == (0, {"space": []})
    assert outputs(github_output) == {"spaces": '{"space":[]}', "any": "false"}

    head = branch(repo, "cleanup", {"search_spaces/b.yaml": None,
                                    "search_spaces/broken.yaml": "input: [3, 64]\noutput: 4\nsequence: nope\n"})
    event = recorded("pull_request-opened", tmp_path, base=repo["main"], head=head)
    code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert (code, json.loads(out)) == (0, {"space": []})
    assert "search_spaces/b.yaml: deleted" in err
    assert "search_spaces/broken.yaml: invalid" in err and "explorer validate search_spaces/broken.yaml" in err


def test_push_compares_before_and_after_and_dispatch_searches_everything(repo, tmp_path, capsys):
    event = recorded("push-main", tmp_path, before=repo["fork_point"], after=repo["main"])
    code, out, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert (code, json.loads(out)) == (0, {"space": ["b"]}), err
    event = recorded("push-main", tmp_path, before="0" * 40, after=repo["main"])  # a new branch
    assert json.loads(run(["ci", "changed-spaces", "--event", str(event)], capsys)[1]) == {"space": ["a", "b"]}
    code, out, err = run(["ci", "changed-spaces", "--event", str(EVENTS / "workflow_dispatch.json")], capsys)
    assert (code, json.loads(out)) == (0, {"space": ["a", "b"]}) and "workflow_dispatch" in err
    code, out, _ = run(["ci", "changed-spaces", "--base", "main"], capsys)  # refs instead of an event
    assert (code, json.loads(out)) == (0, {"space": ["a", "c"]})


def test_changed_spaces_errors_are_one_line(repo, tmp_path, capsys, monkeypatch):
    code, out, err = run(["ci", "changed-spaces", "--event", str(tmp_path / "missing.json")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "no such event file" in err
    code, _, err = run(["ci", "changed-spaces"], capsys)
    assert code == 2 and "GITHUB_EVENT_PATH is not set" in err and err.count("\n") == 1
    event = recorded("pull_request-opened", tmp_path, head=repo["first"])  # base: the placeholder commit
    code, _, err = run(["ci", "changed-spaces", "--event", str(event)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "unknown git revision" in err and "fetch-depth: 0" in err
    elsewhere = tmp_path / "plain"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, _, err = run(["ci", "changed-spaces", "--base", "main"], capsys)
    assert code == 2 and "not a git repository" in err and err.count("\n") == 1


# --- context -----------------------------------------------------------------------------------------


def test_context_marks_fork_pull_requests_untrusted(tmp_path, capsys, monkeypatch):
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    expected = {"pull_request-opened": ("true", "7"), "pull_request-synchronize": ("true", "7"),
                "pull_request-fork": ("false", "8"), "push-main": ("true", ""), "workflow_dispatch": ("true", "")}
    for name, (trusted, pr) in expected.items():
        github_output.write_text("")
        code, out, _ = run(["ci", "context", "--event", str(EVENTS / f"{name}.json")], capsys)
        assert code == 0
        assert f"trusted={trusted}\npr={pr}\n" in out
        assert outputs(github_output)["trusted"] == trusted and outputs(github_output)["pr"] == pr
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(EVENTS / "pull_request-fork.json"))  # the default source
    assert "trusted=false" in run(["ci", "context"], capsys)[1]


# --- report ------------------------------------------------------------------------------------------


def test_mermaid_chart_keeps_to_the_quadrant_grammar():
    assert [coordinate(v) for v in (0.0, -1, 0.5, 0.9996, 1.0, 0.0004)] == ["0", "0", "0.500", "1", "1", "0"]
    assert label("hw_latency (ms): p90") == "hw_latency ms p90" and label("subtitle") == "subti_tle"
    chart = quadrant_chart([("trial 1", 100.0, 0.9), ("trial [2]", 50.0, 0.5), ("trial 3", 75.0, 0.7)],
                           "macs", "accuracy", "x: Pareto", "minimize", "maximize")
    lines = chart.splitlines()
    assert lines[0] == "quadrantChart" and "    quadrant-2 better on both" in lines
    points = [line for line in lines if re.fullmatch(r"    [A-Za-z0-9_ ]+: \[(0|1|0\.\d+), (0|1|0\.\d+)\]", line)]
    assert points == ["    trial 1: [0.950, 0.950]", "    trial 2: [0.050, 0.050]", "    trial 3: [0.500, 0.500]"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A small real experiment, git and DVC tracked: main holds a 2-trial search; the branch grows it to
    4 trials and measures the exported models on the host target."""
    dvc = dvc_executable()
    if dvc is None:
        unavailable("dvc")
    root = tmp_path_factory.mktemp("experiment")
    (root / "spaces").mkdir()
    (root / "spaces" / "net.yaml").write_text(SPACE.format(channels="4, 8"))
    (root / "params.yaml").write_text(SPEC.format(spaces="spaces/net.yaml", trials=2))
    (root / "dvc.yaml").write_text("metrics:\n  - results/net/metrics.json\n")
    (root / ".gitignore").write_text("*.db\ncheckpoints/\nmodels/\nartifacts/\n")
    env = {"GIT_CONFIG_GLOBAL": str(root / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.chdir(root)
        git(root, "init", "-q", "-b", "main")
        subprocess.run([dvc, "init", "-q"], cwd=root, check=True, capture_output=True)
        subprocess.run([dvc, "config", "core.analytics", "false"], cwd=root, check=True, capture_output=True)
        assert main(["search"]) == 0
        commit_all(root, "first search")
        git(root, "checkout", "-q", "-b", "more-trials")
        assert main(["search", "--trials", "4"]) == 0
        assert main(["hil", "export", "--target", "host"]) == 0
        assert main(["hil", "bench", "--target", "host"]) == 0
        assert main(["report"]) == 0
    return root


def test_report_renders_table_chart_boards_and_dvc_diff(searched, capsys, monkeypatch):
    monkeypatch.chdir(searched)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    code, out, err = run(["ci", "report", "-o", "pr-report.md"], capsys)
    assert code == 0, err
    text = (searched / "pr-report.md").read_text()
    assert text.splitlines()[0] == MARKER
    pareto = (searched / "results" / "net" / "pareto.csv").read_text().splitlines()[1:]
    table = re.search(r"\| trial \| accuracy ↑ \| macs ↓ \|.*\n\|[-:|]+\n((?:\|.*\n)+)", text)
    assert table and len(table.group(1).splitlines()) == len(pareto)
    chart = re.search(r"```mermaid\n(quadrantChart\n.*?)```", text, re.S)
    assert chart, text
    points = re.findall(r"^    trial \d+: \[(0|1|0\.\d+), (0|1|0\.\d+)\]$", chart.group(1), re.M)
    assert len(points) == len(pareto)
    assert "x-axis low macs --> high macs" in chart.group(1)
    assert "y-axis low accuracy --> high accuracy" in chart.group(1)
    assert "**Measured on boards**" in text and "| host | local |" in text and " ms |" in text
    assert "| host cost (ms) |" in text  # the board's figure next to the estimates
    run_page = "https://github.com/octo-lab/nas-experiment/actions/runs/4242"
    assert f"workflow artifact `results-net` of [this run]({run_page})" in text
    assert "![" not in text and "<img" not in text  # no images in a comment
    diff = text[text.index("### Compared with `main`"):]
    assert "`dvc metrics diff main`" in diff
    assert re.search(r"\| results/net/metrics.json\s+\| trials_complete\s+\| 2\s+\| 4\s+\| 2\s+\|", diff), diff


def test_report_says_why_the_comparison_is_missing(searched, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(searched)
    code, out, _ = run(["ci", "report", "--base", "no-such-branch"], capsys)
    assert code == 0 and out.startswith(MARKER)
    assert "`no-such-branch` is not in this clone" in out
    code, out, _ = run(["ci", "report", "--spaces", '{"space":["spaces/net.yaml","gone"]}'], capsys)
    assert code == 0 and "### `net`" in out and "No results for `gone`: did the search job fail?" in out
    code, out, _ = run(["ci", "report", "--spaces", "other"], capsys)  # only what the pull request searched
    assert code == 0 and "### `net`" not in out and "No results for `other`" in out
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    code, out, _ = run(["ci", "report"], capsys)
    assert code == 0 and "No results yet" in out and "not a DVC repository" in out


# --- comment -----------------------------------------------------------------------------------------


class GitHubStandIn:
    """GitHub's issue-comment endpoints on 127.0.0.1, with an in-memory comment list."""

    PER_PAGE_CAP = 2

    def __init__(self, pulls=(7, 8)):
        self.comments: dict[int, list[dict]] = {n: [] for n in pulls}
        self.requests: list[tuple[str, str]] = []
        self.read_only = False
        self.next_id = 1000
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def reply(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                parts = urlsplit(self.path)
                with stand_in.lock:
                    stand_in.requests.append((method, self.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.reply(401, {"message": "Bad credentials"})
                body = None
                if method in ("POST", "PATCH"):
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with stand_in.lock:
                    return self.route(method, parts, body)

            def route(self, method, parts, body):
                listing = re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", parts.path)
                single = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", parts.path)
                if listing and int(listing.group(1)) in stand_in.comments:
                    thread = stand_in.comments[int(listing.group(1))]
                    if method == "GET":
                        query = parse_qs(parts.query)
                        per_page = min(int(query.get("per_page", ["30"])[0]), stand_in.PER_PAGE_CAP)
                        page = int(query.get("page", ["1"])[0])
                        last = max(1, -(-len(thread) // per_page))
                        link = f"<http://127.0.0.1:{stand_in.port}{parts.path}?per_page={per_page}&page={{}}>"
                        links = ([f'{link.format(page + 1)}; rel="next"', f'{link.format(last)}; rel="last"']
                                 if page < last else [f'{link.format(1)}; rel="first"'])
                        headers = [("Link", ", ".join(links))] if last > 1 else []
                        return self.reply(200, thread[(page - 1) * per_page: page * per_page], headers)
                    if method == "POST":
                        if stand_in.read_only:
                            return self.reply(403, {"message": "Resource not accessible by integration"})
                        stand_in.next_id += 1
                        comment = {"id": stand_in.next_id, "body": body["body"],
                                   "user": {"login": "github-actions[bot]"},
                                   "html_url": f"https://github.com/{REPO}/pull/{listing.group(1)}"
                                               f"#issuecomment-{stand_in.next_id}"}
                        thread.append(comment)
                        return self.reply(201, comment)
                if single and method == "PATCH":
                    if stand_in.read_only:
                        return self.reply(403, {"message": "Resource not accessible by integration"})
                    for thread in stand_in.comments.values():
                        for comment in thread:
                            if comment["id"] == int(single.group(1)):
                                comment["body"] = body["body"]
                                return self.reply(200, comment)
                return self.reply(404, {"message": "Not Found"})

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_PATCH(self):
                self.handle_any("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("POST", "PATCH")]

    def marked(self, pr: int) -> list[dict]:
        return [c for c in self.comments[pr] if c["body"].startswith(MARKER)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github(monkeypatch, tmp_path):
    stand_in = GitHubStandIn()
    for i in range(3):  # the discussion so far: the report's comment will sit on the second page
        stand_in.comments[7].append({"id": 10 + i, "body": f"looks good {i}" if i else f"> {MARKER} quoted",
                                     "user": {"login": "alice-researcher"}})
    monkeypatch.setenv("GITHUB_API_URL", stand_in.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step_summary.md"))
    yield stand_in
    stand_in.close()


def report_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "report.md"
    path.write_text(f"{MARKER}\n## Architecture search results\n\n{text}\n```mermaid\nquadrantChart\n```\n")
    return path


def test_comment_creates_then_updates_one_sticky_comment(github, tmp_path, capsys):
    event = str(EVENTS / "pull_request-opened.json")
    code, out, err = run(["ci", "comment", "--report", str(report_file(tmp_path, "first")), "--event", event], capsys)
    assert code == 0, err
    assert f"created the report comment 1001 on {REPO}#7" in out
    assert [c["body"] for c in github.marked(7)] == [(tmp_path / "report.md").read_text()]
    code, out, err = run(["ci", "comment", "--report", str(report_file(tmp_path, "second")), "--event", event], capsys)
    assert code == 0, err
    assert f"updated the report comment 1001 on {REPO}#7" in out
    marked = github.marked(7)
    assert len(marked) == 1 and "second" in marked[0]["body"] and len(github.comments[7]) == 4
    assert github.writes() == [("POST", f"/repos/{REPO}/issues/7/comments"),
                               ("PATCH", "/repos/octo-lab/nas-experiment/issues/comments/1001")]
    listed = [path for method, path in github.requests if method == "GET"]
    assert any("page=2" in path for path in listed)  # the marker sat behind a Link: rel="next"
    summary = (tmp_path / "step_summary.md").read_text()
    assert summary.count(MARKER) == 2 and "first" in summary and "second" in summary
    assert TOKEN not in out + err


def test_fork_gets_the_job_summary_only(github, tmp_path, capsys):
    report = report_file(tmp_path, "from a fork")
    code, out, err = run(["ci", "comment", "--report", str(report), "--event",
                          str(EVENTS / "pull_request-fork.json")], capsys)
    assert code == 0 and github.requests == []  # not even a GET: the fork's token never reaches the API
    assert out.count("\n") == 1 and "fork" in out and "job summary" in out
    assert "from a fork" in (tmp_path / "step_summary.md").read_text()
    code, out, _ = run(["ci", "comment", "--report", str(report), "--event", str(EVENTS / "push-main.json")], capsys)
    assert code == 0 and "not a pull request" in out and github.requests == []


def test_read_only_token_falls_back_to_the_summary(github, tmp_path, capsys):
    github.read_only = True
    code, out, err = run(["ci", "comment", "--report", str(report_file(tmp_path, "read only")), "--repo", REPO,
                          "--pr", "7"], capsys)
    assert code == 0 and out.count("\n") == 1 and "HTTP 403" in out and "job summary" in out
    assert github.marked(7) == [] and github.writes() == [("POST", f"/repos/{REPO}/issues/7/comments")]
    assert "read only" in (tmp_path / "step_summary.md").read_text()
    assert TOKEN not in out + err


def test_comment_failures_are_one_line_without_the_token(github, tmp_path, capsys, monkeypatch):
    report = str(report_file(tmp_path, "x"))
    code, out, err = run(["ci", "comment", "--report", report, "--repo", REPO, "--pr", "99"], capsys)
    assert code == 1 and err.count("\n") == 1 and "HTTP 404" in err
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-" + TOKEN)
    code, out, err = run(["ci", "comment", "--report", report, "--repo", REPO, "--pr", "7"], capsys)
    assert code == 1 and "HTTP 401" in err and "token was refused" in err and TOKEN not in out + err
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, out, err = run(["ci", "comment", "--report", report, "--repo", REPO, "--pr", "7"], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("network error") and TOKEN not in out + err
    monkeypatch.setenv("GITHUB_API_URL", "http://api.example.org")  # the token never travels in clear text
    code, out, err = run(["ci", "comment", "--report", report, "--repo", REPO, "--pr", "7"], capsys)
    assert code == 2 and "plain http" in err and TOKEN not in out + err
    monkeypatch.delenv("GITHUB_TOKEN")
    code, out, _ = run(["ci", "comment", "--report", report, "--repo", REPO, "--pr", "7"], capsys)
    assert code == 0 and "GITHUB_TOKEN is not set" in out and "job summary" in out
    code, _, err = run(["ci", "comment", "--report", str(tmp_path / "none.md"), "--pr", "7"], capsys)
    assert code == 2 and "no such report" in err


def test_a_long_report_is_cut_to_githubs_limit(github, tmp_path, capsys):
    rows = "\n".join(f"| {i} | {'x' * 90} |" for i in range(1200))
    body = f"{MARKER}\n<details><summary>all</summary>\n\n```text\n{rows}\n```\n</details>\n"
    cut = truncate(body)
    assert len(body) > COMMENT_LIMIT >= len(cut)
    assert cut.count("```") % 2 == 0 and cut.count("<details>") == cut.count("</details>")
    assert "65,536-character comment limit" in cut
    (tmp_path / "long.md").write_text(body)
    code, out, err = run(["ci", "comment", "--report", str(tmp_path / "long.md"), "--repo", REPO, "--pr", "7"], capsys)
    assert code == 0, err
    (posted,) = github.marked(7)
    assert posted["body"] == cut
    assert (tmp_path / "step_summary.md").read_text().strip() == body.strip()  # the summary keeps it all
