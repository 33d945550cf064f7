"""CHK-17: the parallel search on a Dask cluster (a local one of 2 worker processes, loopback
only) gives exactly the results of one process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from otamodel.checker import CheckReport, check
from otamodel.checker._examples import DieHard, TwoPhaseCommit

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    saved = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"  # every worker must hash alike (CHK-17)
    try:
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    finally:
        if saved is None:
            del os.environ["PYTHONHASHSEED"]
        else:
            os.environ["PYTHONHASHSEED"] = saved
    try:
        yield local.scheduler_address
    finally:
        local.close()


def get_outcome(report: CheckReport[Any, Any]) -> tuple[object, ...]:
    return (
        report.unique_states,
        report.transitions,
        report.max_depth,
        report.stop_reason,
        report.is_complete,
        [(r.name, r.verdict, r.trace) for r in report.results],
    )


@pytest.mark.parametrize("model", [TwoPhaseCommit(4), DieHard()], ids=["2pc-4", "diehard"])
def test_cluster_matches_one_process(cluster: str, model: Any) -> None:
    report = check(model, cluster=cluster)
    assert report.workers == 2
    assert get_outcome(report) == get_outcome(check(model))


def test_cluster_evens_out_shares_with_parcels(
    cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHK-14 on Dask: states given to even out the shares travel as parcels from actor to
    actor through the coordinator, with the results of one process."""
    from otamodel.checker import _parallel

    monkeypatch.setattr(_parallel, "_REBALANCE", 0)
    routed: list[list[bytes]] = []
    route = _parallel._Coordinator.get_takes

    def get_takes(given: list[list[tuple[int, bytes]]]) -> list[list[bytes]]:
        takes = route(given)
        routed.extend(takes)
        return takes

    monkeypatch.setattr(_parallel._Coordinator, "get_takes", staticmethod(get_takes))
    model = TwoPhaseCommit(4)
    assert get_outcome(check(model, cluster=cluster)) == get_outcome(check(model))
    assert any(routed)


def test_cluster_runs_the_ota_model_with_the_scenario_sent_once(cluster: str) -> None:
    from otamodel.verify._properties import OtaModel

    model = OtaModel("erase")
    options: dict[str, Any] = {"cost": model.get_action_cost, "findings": True}
    report = check(model, cluster=cluster, **options)
    alone = check(model, **options)
    assert get_outcome(report) == get_outcome(alone)
    # CHK-35/36: keys and graph work computed on the cluster's workers give the same findings.
    assert report.findings and [(f.id, f.key, f.trace) for f in report.findings] == [
        (f.id, f.key, f.trace) for f in alone.findings
    ]


def test_cli_check_cluster_prints_the_same_report(cluster: str) -> None:
    from click.testing import CliRunner

    from otamodel.cli import main

    args = ["check", "--scenario", "patch", "-q"]
    alone = CliRunner().invoke(main, args)
    spread = CliRunner().invoke(main, [*args, "--cluster", cluster])
    assert spread.exit_code == alone.exit_code
    table = [line for line in alone.output.splitlines() if "│" in line]
    assert table and table == [line for line in spread.output.splitlines() if "│" in line]
