"""The site from an installed nerbench: the wheel carries the templates and the stylesheet
(nerbench/site_assets, read through importlib.resources), and a build whose assets are missing
stops before it touches --out.

The wheel is built offline from a copy of the package (no build isolation: setuptools is in the
test environment), installed with `pip install --target` and imported from there alone, so the
repository's own files cannot stand in for what the wheel lacks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nerbench.errors import NerbenchError
from nerbench.site import MARKER, build_site
from nerbench.store import Store

from _site_store import make_store

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "nerbench" / "site_assets"


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """nerbench's wheel, built from a copy of the sources (the build writes build/ and *.egg-info
    beside them, never into the working tree)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "nerbench", source / "nerbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "dist"), str(source))
    (built,) = (work / "dist").glob("nerbench-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (no dependencies: they come from this venv)."""
    target = tmp_path_factory.mktemp("installed") / "site-packages"
    _pip("install", "--no-deps", "--no-compile", "--target", str(target), str(wheel))
    return target


def _nerbench(target: Path, cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`nerbench ARGS` run from the installed copy in `target`, in a folder outside the repository."""
    script = (
        "import sys, nerbench\n"
        f"assert nerbench.__file__.startswith({str(target) + os.sep!r}), nerbench.__file__\n"
        "from nerbench.cli import main\n"
        "sys.argv = ['nerbench', *sys.argv[1:]]\n"
        "main()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target), NERBENCH_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_wheel_carries_every_site_asset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = sorted(p.relative_to(ROOT).as_posix() for p in ASSETS.rglob("*") if p.is_file())
    assert "nerbench/site_assets/templates/index.html" in assets and "nerbench/site_assets/static/site.css" in assets
    assert [a for a in assets if a not in names] == []
    assert not any(n.startswith("leaderboard/") for n in names)  # the built site and its docs stay in the repo


def test_the_installed_wheel_builds_the_site(installed, tmp_path, data_dir, monkeypatch):
    # Both builds state the same build time (SOURCE_DATE_EPOCH reaches the subprocess too).
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    db = tmp_path / "store.duckdb"
    make_store(db, data_dir)
    outside = tmp_path / "elsewhere"  # not the repository: no leaderboard/ folder to fall back on
    outside.mkdir()
    build = ("site", "build", "--db", str(db), "--out", "site")
    result = _nerbench(installed, outside, data_dir, *build, "--resamples", "200")
    assert result.returncode == 0, result.stdout + result.stderr
    site = outside / "site"
    assert result.stdout.strip() == str((site / "index.html").resolve())
    assert (site / MARKER).is_file() and (site / "static" / "site.css").is_file()
    assert (site / "static" / "site.css").read_bytes() == (ASSETS / "static" / "site.css").read_bytes()
    # The installed package renders the same site as the repository's code.
    here = tmp_path / "here"
    build_site(db, here, data_dir=data_dir, resamples=200)
    assert _files(site) == _files(here)

    # An install that lost its assets refuses before touching --out: the earlier build stays whole.
    before = _files(site)
    shutil.rmtree(installed / "nerbench" / "site_assets" / "static")
    result = _nerbench(installed, outside, data_dir, *build)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "the site's templates and stylesheet are missing" in message and "Nothing was written" in message
    assert _files(site) == before


def test_missing_assets_leave_the_out_folder_untouched(tmp_path):
    db = tmp_path / "empty.duckdb"
    Store(db).close()
    out = tmp_path / "site"
    build_site(db, out, data_dir=tmp_path / "no-data")  # an earlier build, which a build may replace
    (out / "notes.txt").write_text("kept")
    before = _files(out)
    for broken in (tmp_path / "no-assets", tmp_path / "half"):
        if broken.name == "half":
            (broken / "templates").mkdir(parents=True)  # templates but no static/
        with pytest.raises(NerbenchError, match=r"templates and stylesheet are missing .*Nothing was written"):
            build_site(db, out, data_dir=tmp_path / "no-data", assets=broken)
        assert _files(out) == before


def test_site_build_gives_numpy_one_blas_thread_where_it_loads_numpy_and_the_user_did_not_choose():
    """The build's worker multiplies small matrices, where a second OpenBLAS thread only burnt the
    other process's CPU: nerbench.cli.site_cmd sets one thread before numpy loads."""
    pytest.importorskip("threadpoolctl")

    def threads(code: str, **env: str) -> str:
        clean = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"} | env
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    count = (
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))"
    )
    assert threads("import nerbench.cli.site_cmd\n" + count) == "[1]"
    assert threads("import nerbench.cli.site_cmd\n" + count, OPENBLAS_NUM_THREADS="2") == "[2]"
    # numpy loaded before the command: its threads are left as they are
    assert threads("import numpy\nimport nerbench.cli.site_cmd\n" + count) == threads("import numpy\n" + count)
