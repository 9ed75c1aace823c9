"""Local paths refused where the workers cannot see them (jobs/remote.py).

A run on Dataflow, a Flink or Spark cluster or a remote job service with `--output out` or a local crawl used to be
submitted, its workers then failing on files only the driver's disk holds (or writing shards to their own disks).
Now it stops before anything is written, in one line naming the flag or recipe key and the path, unless
--shared-filesystem says the folder is mounted on every worker. No cluster is needed: the refusal comes before
the job is submitted. Paths only the driver reads (the recipe file, --input-list files, the benchmark files of
[decontamination]) may stay local on any runner; the last test runs a pipeline whose workers are other processes
after those files are gone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_pipeline
from jobs.remote import local_path_problem, remote_workers
from schemas.recipe import load_recipe

TOKENMILL = [sys.executable, "-m", "tokenmill_cli"]
# A machine type, as the README's Dataflow command gives one (without it a note on worker threads comes first).
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=r", "--machine_type=n1-standard-4"]
FLINK_CLUSTER = ["--runner=FlinkRunner", "--flink_master=flink.example:8081"]


@pytest.mark.parametrize(("beam_args", "remote"), [
    ([], None),
    (["--runner=DirectRunner"], None),
    (["--runner=PrismRunner"], None),
    (DATAFLOW, "DataflowRunner"),
    (["--runner=apache_beam.runners.dataflow.dataflow_runner.DataflowRunner"], "DataflowRunner"),
    (["--runner=dataflow"], "DataflowRunner"),  # Beam takes a runner's name in any case, without 'Runner'
    (["--runner=FlinkRunner"], None),  # [auto]: an embedded Flink in the job server on this machine, LOOPBACK
    (["--runner=FlinkRunner", "--flink_master=[local]"], None),
    (FLINK_CLUSTER, "FlinkRunner with --flink_master=flink.example:8081"),
    ([*FLINK_CLUSTER, "--environment_type=LOOPBACK"], None),  # the SDK harness is this process
    (["--runner=FlinkRunner", "--environment_type=DOCKER"], "FlinkRunner with --environment_type=DOCKER (containers)"),
    (["--runner=FlinkRunner", "--environment_type=PROCESS"], None),
    (["--runner=FlinkRunner", "--job_endpoint=jobs.example:8099", "--environment_type=PROCESS"],
     "FlinkRunner with --job_endpoint=jobs.example:8099"),
    (["--runner=SparkRunner"], None),  # local[4]
    (["--runner=SparkRunner", "--spark_master_url=local[2]"], None),
    (["--runner=SparkRunner", "--spark_master_url=spark://spark.example:7077"],
     "SparkRunner with --spark_master_url=spark://spark.example:7077"),
    (["--runner=SparkRunner", "--spark_submit_uber_jar", "--spark_rest_url=http://spark.example:6066",
      "--environment_type=DOCKER"], "SparkRunner with --spark_rest_url=http://spark.example:6066"),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], "PortableRunner with --job_endpoint=localhost:8099"),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=EXTERNAL",
      "--environment_config=localhost:50000"], "PortableRunner with --job_endpoint=localhost:8099"),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"], None),
    (["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=PROCESS"], None),
])
def test_which_runners_workers_cannot_open_this_machines_files(beam_args, remote):
    assert remote_workers(beam_args) == remote


def test_a_path_is_refused_only_when_local_and_the_workers_are_elsewhere(tmp_path):
    remote = "DataflowRunner"
    for store in ("gs://b/crawl/*.warc.gz", "s3://b/out", "hdfs://nn/x", "azfs://acct/c/x"):
        assert local_path_problem("--input", store, remote, shared=False) is None
    assert local_path_problem("--input", "crawl/a.warc.gz", None, shared=False) is None  # workers on this machine
    assert local_path_problem("--output", "out", remote, shared=False) == (
        "--output 'out' is on this machine's disk, and the workers of DataflowRunner cannot open it: give a path "
        "they can (gs://, s3://, hdfs://, ...), or --shared-filesystem if it is mounted at the same place on every "
        "worker")
    assert local_path_problem("--output", str(tmp_path / "out"), remote, shared=True) is None
    # With a shared filesystem a relative path would be relative to each worker's own folder.
    problem = local_path_problem("--output", "out", remote, shared=True)
    assert problem.startswith("--output 'out' is relative, and the workers of DataflowRunner do not start in this "
                              "folder: give it as an absolute path on the shared filesystem (/")


def test_the_real_command_refuses_a_local_output_for_a_cluster_in_one_line_and_writes_nothing(demo_crawl, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*TOKENMILL, "run", "--input", *demo_crawl, "--output", str(out), *FLINK_CLUSTER],
                          cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"tokenmill: --output '{out}' is on this machine's disk, and the workers of FlinkRunner with "
        "--flink_master=flink.example:8081 cannot open it: give a path they can (gs://, s3://, hdfs://, ...), or "
        "--shared-filesystem if it is mounted at the same place on every worker"]
    assert not out.exists()


def test_the_real_command_refuses_a_local_crawl_for_dataflow(demo_crawl, tmp_path):
    done = subprocess.run([*TOKENMILL, "run", "--input", f"{demo_crawl[0]},{demo_crawl[1]}", "--output",
                           "gs://bucket/out", *DATAFLOW], cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"tokenmill: --input '{demo_crawl[0]}' is on this machine's disk, and the workers of DataflowRunner cannot "
        "open it: give a path they can (gs://, s3://, hdfs://, ...), or --shared-filesystem if it is mounted at the "
        "same place on every worker"]


def _recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return str(path)


# Each names one file a worker opens; the recipe file itself is local in every case and is not what is refused.
WORKER_FILES = [
    ('[filters]\norder = ["url"]\n[filters.url]\ndomain_files = ["/lists/domains.txt"]\n',
     "filters.url.domain_files '/lists/domains.txt'"),
    ('[language]\nmodel_path = "/models/lid.176.ftz"\n', "language.model_path '/models/lid.176.ftz'"),
    ('[quality]\nenabled = true\nmodel_path = "/models/quality.bin"\n', "quality.model_path '/models/quality.bin'"),
    ('[tokenizer]\nname = "/tok/tokenizer.json"\n', "tokenizer.name '/tok/tokenizer.json'"),
    ('[dedup]\nagainst = ["/releases/web-1"]\n', "dedup.against '/releases/web-1'"),
]


@pytest.mark.parametrize(("recipe", "named"), WORKER_FILES, ids=[n.split(" ")[0] for _r, n in WORKER_FILES])
def test_a_recipe_file_a_worker_opens_is_refused_by_its_key(tmp_path, capsys, recipe, named):
    argv = ["--input", "gs://bucket/crawl/*.warc.gz", "--output", "gs://bucket/out", "--config",
            _recipe(tmp_path, recipe), *DATAFLOW]
    assert run_pipeline.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"tokenmill: {named} is on this machine's disk, and the workers of DataflowRunner cannot open it: give a "
        "path they can (gs://, s3://, hdfs://, ...), or --shared-filesystem if it is mounted at the same place on "
        "every worker"]


def test_what_only_the_driver_reads_is_not_among_the_workers_files(tmp_path):
    """The recipe file, the benchmark files of [decontamination] (the driver builds the index and writes it into
    the output's _staging/) are no worker's: a local one suits any runner."""
    recipe = load_recipe(_recipe(tmp_path, '[decontamination]\nenabled = true\nsources = ["/bench/items.jsonl"]\n'
                                           '[dedup]\nagainst = ["gs://releases/web-1"]\n'))
    assert run_pipeline.worker_paths(recipe) == [("dedup.against", "gs://releases/web-1")]


def test_an_input_list_may_be_local_but_the_paths_it_names_may_not(tmp_path, capsys):
    listed = tmp_path / "warc.paths"
    listed.write_text("# the crawl\ngs://bucket/crawl/a.warc.gz\ncrawl/b.warc.gz\n")
    argv = ["--input-list", str(listed), "--output", "gs://bucket/out", *DATAFLOW]
    assert run_pipeline.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"tokenmill: --input-list {listed}: the path 'crawl/b.warc.gz' is on this machine's disk, and the workers "
        "of DataflowRunner cannot open it: give a path they can (gs://, s3://, hdfs://, ...), or --shared-filesystem "
        "if it is mounted at the same place on every worker"]
    # The list file itself is read here: only the lines are checked.
    checked: list[tuple[str, str]] = []
    listed.write_text("gs://bucket/crawl/a.warc.gz\n")
    found, missing = run_pipeline.listed_inputs([str(listed)], check=lambda f, p: checked.append((f, p)))
    assert found == {"gs://bucket/crawl/a.warc.gz": None} and missing == []
    assert checked == [(str(listed), "gs://bucket/crawl/a.warc.gz")]


def test_select_refuses_a_local_source_or_output_for_remote_workers(tmp_path, capsys):
    argv = [str(tmp_path / "scored"), "--output", "gs://bucket/strict", *FLINK_CLUSTER]
    assert run_pipeline.main(argv, command=run_pipeline.select) == 2
    assert capsys.readouterr().err.startswith(f"tokenmill: the source run '{tmp_path / 'scored'}' is on this "
                                              "machine's disk, and the workers of FlinkRunner with")
    argv = ["gs://bucket/scored", "--output", "strict", *FLINK_CLUSTER, "--shared-filesystem"]
    assert run_pipeline.main(argv, command=run_pipeline.select) == 2
    assert capsys.readouterr().err.startswith("tokenmill: --output 'strict' is relative")


def test_shared_filesystem_lets_absolute_local_paths_through(demo_crawl, tmp_path):
    """Past the check the run would start Flink's job server; the check itself is what run() calls."""
    remote = remote_workers(FLINK_CLUSTER)
    named = [("--output", str(tmp_path / "out")), *(("--input", p) for p in demo_crawl)]
    run_pipeline.check_worker_paths(remote, True, named)
    with pytest.raises(run_pipeline.UsageError, match="is on this machine's disk"):
        run_pipeline.check_worker_paths(remote, False, named)


def test_workers_in_other_processes_never_open_the_recipe_the_input_list_or_the_benchmark_files(
        demo_crawl, tmp_path, monkeypatch):
    """Why those three may stay local on a cluster: the run's files only the driver reads are deleted as soon as
    it has prepared the output (before the pipeline is built), and the run, whose workers are other processes
    (multi_processing), still reads its crawl, decontaminates against the benchmark and ends as usual."""
    bench = tmp_path / "items.jsonl"
    bench.write_text(json.dumps({"text": "an item of a benchmark with more than eight words in it, which the "
                                         "driver indexes"}) + "\n")
    recipe = _recipe(tmp_path, f'[decontamination]\nenabled = true\nsources = ["{bench}"]\n')
    listed = tmp_path / "warc.paths"
    listed.write_text("\n".join(demo_crawl) + "\n")
    prepare = run_pipeline.prepare_output

    def prepare_then_delete(output: str, **kw):
        note = prepare(output, **kw)
        for driver_only in (bench, Path(recipe), listed):
            driver_only.unlink()
        return note

    monkeypatch.setattr(run_pipeline, "prepare_output", prepare_then_delete)
    stats = run_pipeline.run(["--input-list", str(listed), "--output", str(tmp_path / "out"), "--config", recipe,
                              "--direct_num_workers=2"])
    assert not bench.exists() and stats["records"] == 18
    assert stats["decontamination"]["sources"][0]["path"] == str(bench)
    assert (tmp_path / "out" / "manifest.json").exists()


def test_a_flink_run_gets_streaming_mode_and_a_note_saying_so_other_runners_nothing():
    assert run_pipeline.flink_streaming([*FLINK_CLUSTER]) == ([*FLINK_CLUSTER, "--streaming"],
                                                              run_pipeline.FLINK_STREAMING_NOTE)
    assert run_pipeline.flink_streaming([*FLINK_CLUSTER, "--streaming"]) == ([*FLINK_CLUSTER, "--streaming"], None)
    assert run_pipeline.flink_streaming(["--runner=SparkRunner"]) == (["--runner=SparkRunner"], None)


def test_a_spark_run_keeps_its_sdk_workers_between_stages_unless_the_user_says_otherwise():
    spark = ["--runner=SparkRunner", "--spark_master_url=spark://spark.example:7077"]
    assert run_pipeline.spark_environment_cache(spark) == [
        *spark, f"--environment_cache_millis={run_pipeline.SPARK_ENVIRONMENT_CACHE_MS}"]
    for given in (["--environment_cache_millis=0"], ["--environment_cache_millis", "5"]):
        assert run_pipeline.spark_environment_cache([*spark, *given]) == [*spark, *given]
    assert run_pipeline.spark_environment_cache(FLINK_CLUSTER) == FLINK_CLUSTER
    assert run_pipeline.spark_environment_cache([]) == []
