"""The repository as a Space and as a CI project: front matter, pinned versions, workflows, README."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gradio
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def _front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_space_front_matter_names_the_app_and_the_installed_gradio():
    meta = _front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (REPO / "app.py").is_file()
    assert {"title", "emoji", "license"} <= meta.keys()
    pinned = re.search(r"^gradio==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and meta["sdk_version"] == pinned.group(1) == gradio.__version__


def test_ci_runs_the_readme_commands():
    body = (REPO / "README.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    setup_and_run, tests = re.search(r"```bash\n(.*?)\n```", body, re.S).group(1).splitlines()
    setup, run = setup_and_run.rsplit(" && ", 1)
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert setup in ci and tests in ci and any(line.startswith(run) for line in ci)
    assert run == ".venv/bin/python app.py"
    assert tests == ".venv/bin/pip install -r requirements-dev.txt && .venv/bin/python -m pytest"


def test_the_space_installs_the_runtime_only():
    runtime = (REPO / "requirements.txt").read_text()
    dev = (REPO / "requirements-dev.txt").read_text()
    for tool in ("pytest", "playwright", "ruff", "actionlint"):
        assert tool not in runtime and tool in dev
    assert dev.startswith("# ") and "-r requirements.txt" in dev.splitlines()


def test_code_is_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_script_edits_sys_path():
    edit = "sys.path." + "insert"  # spelled apart, so this file does not find itself
    for path in [*REPO.glob("*.py"), *REPO.glob("*/*.py")]:
        assert edit not in path.read_text(encoding="utf-8"), path


def test_workflows_pass_actionlint():
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} == {"build-index.yml", "tests.yml"}
    result = subprocess.run([actionlint, *map(str, workflows)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _index_workflow() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "build-index.yml").read_text())


def _runs(steps: list[dict]) -> list[str]:
    return [s.get("run", "") for s in steps]


def test_index_workflow_builds_from_a_dataset_and_pushes_with_the_secret():
    flow = _index_workflow()
    triggers = flow[True]  # YAML reads the key `on` as True
    assert "workflow_dispatch" in triggers and "schedule" in triggers
    build, merge = flow["jobs"]["build"]["steps"], flow["jobs"]["merge"]["steps"]
    assert "python -m indexing build" in "\n".join(_runs(build)) and "--dataset" in "\n".join(_runs(build))
    assert "python -m indexing push" in "\n".join(_runs(merge))
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in build + merge)
    assert all(any(s.get("with", {}).get("cache") == "pip" for s in job) for job in (build, merge))
    assert any("secrets.HF_TOKEN" in str(s.get("env", {})) for s in merge)


def test_index_workflow_builds_on_the_pushed_index_with_cpu_wheels_and_reports():
    flow = _index_workflow()
    assert flow[True]["workflow_dispatch"]["inputs"]["full_rebuild"]["type"] == "boolean"
    steps = flow["jobs"]["build"]["steps"]
    runs = _runs(steps)
    pull = next(i for i, r in enumerate(runs) if "python -m indexing pull" in r)
    build = next(i for i, r in enumerate(runs) if "python -m indexing build" in r)
    install = next(i for i, r in enumerate(runs) if "pip install -r requirements.txt" in r)
    assert install < pull < build, "it pulls the last index before it builds on it"
    assert (
        steps[pull]["if"] == "env.FULL_REBUILD != 'true' && env.SHARDS == '1'" and "--out index" in runs[pull]
    )
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[install]
    assert runs[install].index("torch==") < runs[install].index("requirements.txt")
    merge_runs = _runs(flow["jobs"]["merge"]["steps"])
    assert any("GITHUB_STEP_SUMMARY" in r and "build-summary.json" in r for r in merge_runs)
    assert "--label-column" in runs[build] and "--meta-columns" in runs[build]
    assert any("path" in s.get("with", {}) and "huggingface" in s["with"]["path"] for s in steps)


def test_index_workflow_fans_out_over_shards_and_merges_before_pushing():
    flow = _index_workflow()
    jobs = flow["jobs"]
    assert flow[True]["workflow_dispatch"]["inputs"]["shards"]["default"] == "1"
    plan = "\n".join(_runs(jobs["plan"]["steps"]))
    assert "[range($n)]" in plan and "GITHUB_OUTPUT" in plan
    build = jobs["build"]
    assert build["needs"] == "plan"
    assert build["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert build["env"]["SHARD"] == "${{ matrix.shard }}"
    command = next(r for r in _runs(build["steps"]) if "python -m indexing build" in r)
    assert '--shard "$SHARD/$SHARDS"' in command
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}" and "index/" in upload["with"]["path"]

    merge = jobs["merge"]
    assert set(merge["needs"]) == {"plan", "build"}
    steps = merge["steps"]
    download = next(
        i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact")
    )
    assert steps[download]["with"] == {"pattern": "shard-*", "path": "shards"}
    runs = _runs(steps)
    joined = next(
        i for i, r in enumerate(runs) if "python -m indexing merge shards/shard-*/index --out index" in r
    )
    push = next(i for i, r in enumerate(runs) if "python -m indexing push index" in r)
    assert download < joined < push, "the shards are downloaded, merged, then pushed"
    assert "python -m indexing info index" in runs[joined]  # the merged index's recall, in the log


@pytest.mark.parametrize("module", sorted(p.stem for p in (REPO / "benchmarks").glob("bench_*.py")))
def test_every_benchmark_imports_and_has_a_main(module):
    """A benchmark is run by hand, rarely: one that broke at import would go unnoticed until then."""
    loaded = importlib.import_module(f"benchmarks.{module}")
    assert callable(loaded.main) and loaded.__doc__


def test_windows_gets_a_clear_word_instead_of_a_missing_posix_module():
    script = "import os; os.name = 'nt'; import indexing"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "ImportError: Buscador Visual runs on Linux and macOS; on Windows, run it in WSL" in result.stderr
