"""``--engine spark`` gives the local engine's outputs: on ``local[2]`` and once on a real standalone
Spark master and worker started here from the PySpark installation (loopback only, stopped at the
end). The population is the bench's (scripts/population.py): Synthea background patients and the
re-identified seed PDAC patients."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark")

from cds_service.cli import main  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.population import build, manifest_of  # noqa: E402

pytestmark = pytest.mark.slow

POPULATION = 400
COMPARED_FILES = ("evaluations.ndjson", "candidates.csv")  # report.html names the engine


@pytest.fixture(scope="module")
def population() -> Path:
    return build(POPULATION)


@pytest.fixture(scope="module")
def local_out(population, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    as_of = manifest_of(population)["asOf"]
    assert main(["screen", "--ndjson", str(population), "--out", str(out), "--as-of", as_of, "--quiet",
                 "--workers", "2"]) == 0
    return out


def assert_same_outputs(local: Path, spark: Path) -> None:
    for name in COMPARED_FILES:
        assert (spark / name).read_bytes() == (local / name).read_bytes(), name
    a, b = (json.loads((d / "summary.json").read_text()) for d in (local, spark))
    for key in ("counts", "funnel", "exclusions", "input"):
        if key in a:
            assert b[key] == a[key], key
    assert b["engine"]["name"] == "spark" and a["engine"]["name"] == "local"


def test_spark_local_mode_gives_the_local_engines_outputs(population, local_out, tmp_path):
    out = tmp_path / "out"
    as_of = manifest_of(population)["asOf"]
    assert main(["screen", "--ndjson", str(population), "--out", str(out), "--as-of", as_of, "--quiet",
                 "--engine", "spark", "--spark-master", "local[2]"]) == 0
    assert_same_outputs(local_out, out)
    lines = (out / "evaluations.ndjson").read_bytes().splitlines()
    assert len(lines) == POPULATION
    verdicts = {json.loads(line)["verdict"] for line in lines}
    assert verdicts == {"likely-eligible", "needs-review", "not-eligible"}


def test_spark_reads_bundles_folders_too(tmp_path):
    from cds_service.seeding import seed_bundles

    folder = tmp_path / "bundles"
    folder.mkdir()
    for slug, bundle in seed_bundles().items():
        (folder / f"{slug}.json").write_text(json.dumps(bundle))
    outs = {}
    for engine in ("local", "spark"):
        outs[engine] = tmp_path / engine
        assert main(["screen", "--bundles", str(folder), "--out", str(outs[engine]), "--as-of", "2026-11-24",
                     "--quiet", "--engine", engine, "--spark-master", "local[2]"]) == 0
    assert_same_outputs(outs["local"], outs["spark"])


# --- a real standalone cluster: one master, one worker, on loopback --------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "a Spark daemon exited during start-up"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture()
def standalone_cluster(tmp_path):
    spark_home = Path(pyspark.__file__).parent
    spark_class = spark_home / "bin" / "spark-class"
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_WORKER_DIR": str(tmp_path / "work"), "SPARK_LOG_DIR": str(tmp_path / "logs"),
           "PYSPARK_PYTHON": sys.executable}
    master_port, worker_port = _free_port(), _free_port()
    logs = open(tmp_path / "spark-daemons.log", "wb")
    started = []
    try:
        master = subprocess.Popen(
            ["bash", str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(master_port), "--webui-port", str(_free_port())],
            env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(master)
        _wait_for_port(master_port, master, 90)
        url = f"spark://127.0.0.1:{master_port}"
        worker = subprocess.Popen(
            ["bash", str(spark_class), "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
             "--port", str(worker_port), "--webui-port", str(_free_port()), "--cores", "2", "--memory", "2g",
             "--work-dir", str(tmp_path / "work")],
            env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(worker)
        _wait_for_port(worker_port, worker, 90)
        yield url
    finally:
        for process in reversed(started):  # only the daemons this fixture started, by their own group
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=10)
        logs.close()


def test_a_standalone_spark_cluster_gives_the_local_engines_outputs(population, local_out, standalone_cluster, tmp_path):
    out = tmp_path / "out"
    as_of = manifest_of(population)["asOf"]
    assert main(["screen", "--ndjson", str(population), "--out", str(out), "--as-of", as_of, "--quiet",
                 "--engine", "spark", "--spark-master", standalone_cluster]) == 0
    assert_same_outputs(local_out, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"]["master"] == standalone_cluster
