"""Population screening (``trialcds screen``): every patient of an export through the same evaluation
as the CDS Hooks card and ``trialcds evaluate``.

The path of a run, and the seams between its modules (H8's ``bulk.py`` and ``engines/spark.py`` plug in
here)::

    input            inputs.NdjsonSource(dir) | inputs.BundleSource(dir)
      │              a Bulk Data client (bulk.py) downloads the export into a folder, then hands that
      │              folder to NdjsonSource — every input is "a folder of files" from here on.
      ▼              reads.TrialReads.from_trial(trial): the resource types (``_type``) and codes the
      │              trial reads, derived from its prefetch templates — the screen reads exactly
      │              what the hook reads.
    grouping         grouping.route(resource) → the patient a resource belongs to, or the Medication
      │              reference it waits for; grouping.partition_chunk / join_medications /
      │              patients_of_partition: hash-partitioned to disk, one partition in memory at a time.
      ▼
    engine           engines.Engine.run(plan, progress) -> EngineRun(shards, issues)
      │              an engine only decides WHERE a patient is evaluated: local (worker processes) or
      │              spark. Each shard is an NDJSON file of PatientResult lines sorted by ``key``.
      ▼
    evaluate         evaluate.screen_patient(trial, as_of, key, resources) -> PatientResult | None
      │              calls cds_service.criteria.evaluate_resources, the function the hook and
      │              ``trialcds evaluate`` call.
      ▼
    outputs          outputs.write_outputs(...): evaluations.ndjson, candidates.csv, summary.json,
                     report.html (report.py); owner-only files in an owner-only folder.

A ``PatientResult`` (one line of a shard) is ``{"key": patient id, "evaluation": <evaluation object>,
"name": str | None, "mrn": str | None}``. Problems with the input are ``issues.InputIssues`` (counted,
and the first ones listed), merged across workers and written to summary.json.
"""
