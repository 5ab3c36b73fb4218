"""The four outputs: deterministic, owner-only, the worklist in its order, --previous marking new."""

from __future__ import annotations

import csv
import json
import os
import stat

from cds_service.seeding import patient_id

from .helpers import background_patient, evaluations, resources, screen, summary, write_ndjson

OUTPUTS = ("evaluations.ndjson", "candidates.csv", "summary.json", "report.html")


def population(seeds) -> list[dict]:
    items = resources(seeds.values())
    for n in range(40):
        items += background_patient(n)
    return items


def without_timings(path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("timings")
    return data


def test_two_runs_give_the_same_bytes(seeds, as_of, tmp_path):
    folder = write_ndjson(tmp_path / "in", population(seeds), files_per_type=2)
    for run in ("a", "b"):
        assert screen("--ndjson", folder, "--out", tmp_path / run, "--as-of", as_of, "--quiet", "--workers", 2) == 0
    for name in ("evaluations.ndjson", "candidates.csv", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert without_timings(tmp_path / "a" / "summary.json") == without_timings(tmp_path / "b" / "summary.json")
    # One worker or two: the same evaluations and worklist (the engine details differ, nothing else).
    assert screen("--ndjson", folder, "--out", tmp_path / "c", "--as-of", as_of, "--quiet", "--workers", 1) == 0
    for name in ("evaluations.ndjson", "candidates.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "c" / name).read_bytes(), name
    refs = list(evaluations(tmp_path / "a"))
    assert refs == sorted(refs, key=lambda r: r.split("/", 1)[1]) and len(refs) == len(seeds) + 40


def test_outputs_are_owner_only_whatever_the_umask(seeds, as_of, tmp_path):
    old = os.umask(0)
    try:
        folder = write_ndjson(tmp_path / "in", resources(list(seeds.values())[:3]))
        out = tmp_path / "new" / "out"
        assert screen("--ndjson", folder, "--out", out, "--as-of", as_of, "--quiet") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in OUTPUTS:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # the scratch folder is gone
    # A file left world-readable by someone else is narrowed when rewritten.
    (out / "candidates.csv").chmod(0o644)
    assert screen("--ndjson", folder, "--out", out, "--as-of", as_of, "--quiet") == 0
    assert stat.S_IMODE((out / "candidates.csv").stat().st_mode) == 0o600


def read_csv(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_worklist_order_and_columns(seeds, as_of, tmp_path):
    folder = write_ndjson(tmp_path / "in", population(seeds))
    assert screen("--ndjson", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
    rows = read_csv(tmp_path / "out" / "candidates.csv")
    found = evaluations(tmp_path / "out")
    candidates = {ref for ref, e in found.items() if e["verdict"] != "not-eligible"}
    assert {r["patient"] for r in rows} == candidates and len(rows) == len(candidates)
    ranks = [(r["verdict"] != "likely-eligible", int(r["open_items"])) for r in rows]
    assert ranks == sorted(ranks)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        evaluation = found[r["patient"]]
        unknown = [c for c in evaluation["criteria"] if c["status"] == "unknown"]
        assert r["open_items"] == str(sum(c["automated"] for c in unknown))
        for c in unknown:
            assert f"{c['label']}: {c['reason']}" in r["what_to_check"]
        assert r["name"]  # every seed patient has a name
    s = summary(tmp_path / "out")
    assert s["counts"]["candidates"] == len(rows)
    assert s["counts"]["screened"] == len(found) == s["funnel"][0]["patients"]
    assert s["funnel"][-1]["patients"] == len(rows)
    steps = [step["patients"] for step in s["funnel"]]
    assert steps == sorted(steps, reverse=True)  # a funnel only narrows
    # Every not-eligible patient is counted under each criterion that fails.
    failing = {}
    for e in found.values():
        if e["verdict"] == "not-eligible":
            for c in e["criteria"]:
                if c["status"] == "fail":
                    failing[c["id"]] = failing.get(c["id"], 0) + 1
    assert {x["criterion"]: x["patients"] for x in s["exclusionReasons"]} == failing


def test_previous_marks_the_new_candidates(seeds, as_of, tmp_path):
    items = list(seeds.values())
    first = write_ndjson(tmp_path / "week1", resources(items[::2]))
    second = write_ndjson(tmp_path / "week2", resources(items))
    assert screen("--ndjson", first, "--out", tmp_path / "o1", "--as-of", as_of, "--quiet") == 0
    assert {r["new"] for r in read_csv(tmp_path / "o1" / "candidates.csv")} == {""}  # no --previous: nothing marked
    assert screen("--ndjson", second, "--out", tmp_path / "o2", "--as-of", as_of, "--quiet", "--previous", tmp_path / "o1") == 0
    before = {r["patient"] for r in read_csv(tmp_path / "o1" / "candidates.csv")}
    rows = read_csv(tmp_path / "o2" / "candidates.csv")
    assert before and any(r["patient"] not in before for r in rows)
    for r in rows:
        assert r["new"] == ("" if r["patient"] in before else "new"), r["patient"]
    assert summary(tmp_path / "o2")["counts"]["newCandidates"] == sum(r["new"] == "new" for r in rows)
    assert f"Patient/{patient_id(items[-1])}" in evaluations(tmp_path / "o2")


def test_record_text_cannot_become_a_spreadsheet_formula(seeds, as_of, tmp_path):
    bundle = json.loads(json.dumps(seeds["p01-eligible-gem-nabpac"]))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["name"] = [{"text": '=HYPERLINK("http://evil.example","click")'}]
    folder = write_ndjson(tmp_path / "in", resources([bundle]))
    assert screen("--ndjson", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
    (row,) = read_csv(tmp_path / "out" / "candidates.csv")
    assert row["name"] == "'" + '=HYPERLINK("http://evil.example","click")'
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "=HYPERLINK(&quot;http://evil.example&quot;" in html and 'href="http://evil' not in html


def test_a_population_without_candidates_still_gets_every_output(as_of, tmp_path):
    items = [r for n in range(5) for r in background_patient(n)]
    assert screen("--ndjson", write_ndjson(tmp_path / "in", items), "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
    assert read_csv(tmp_path / "out" / "candidates.csv") == []
    s = summary(tmp_path / "out")
    assert s["counts"]["not-eligible"] == 5 and s["funnel"][-1]["patients"] == 0
    assert "No candidates in this run." in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
