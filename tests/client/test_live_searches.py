"""A small real search on the CPU: the SDK and the `li2` command against the real service, whose
embedded Celery worker trains the runs and plans each next round at the round's fan-in."""

import json

import pytest

from li2_client import ScalingLaw, Search, ValidationError
from li2_client.cli import main


@pytest.fixture(scope="session")
def finished_search(client, tiny):
    base = tiny(epochs=150).eval_every(5).to_dict()
    search = client.find_critical_size(
        base, orders=[11, 13], seeds=1, tolerance=0.25, max_runs=10, initial_points=3, points_per_round=2
    )
    assert isinstance(search, Search) and search.status == "running" and search.n_runs == 6
    return search.wait(timeout=1200, poll=1.0, progress=False)


def test_search_runs_rounds_on_the_worker_and_counts_every_run_once(finished_search):
    s = finished_search
    assert s.status == "succeeded" and s.stop_reason in ("tolerance", "max_runs", "max_rounds"), s.data
    assert s.round >= 1 and 6 < s.n_runs <= 10  # round 1 was planned by the worker's fan-in
    assert s.counts["succeeded"] == s.n_runs and s.progress == 1.0
    df = s.runs()
    assert len(df) == s.n_runs and set(df["round"]) >= {0, 1}
    points = {(r["task.order"], r["data.train_size"], r["seed"]) for _, r in df.iterrows()}
    assert len(points) == s.n_runs  # no point trained twice
    assert {o["order"] for o in s.orders} == {11, 13}


def test_search_law_is_typed_and_honest(finished_search, tmp_path):
    law = finished_search.scaling_law()
    assert isinstance(law, ScalingLaw) and law.raw["partial"] is False
    assert law.status in ("fitted", "unresolved", "bounded")
    assert law.fitted == (law.c is not None)
    if not law.fitted:
        assert law.reason and law.predict(11) is None
    assert {p.M for p in law.critical} == {11, 13}
    paths = finished_search.plot(tmp_path)
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_li2_search_commands(live_service, alice, finished_search, capsys, tmp_path):
    def li2(*args):
        code = main(["--url", live_service.url, f"--token={alice}", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = li2("search", "status", finished_search.id, "--json")
    assert code == 0 and json.loads(out)["id"] == finished_search.id
    code, out, _ = li2("search", "runs", finished_search.id)
    assert code == 0 and len(out.splitlines()) == 2 + finished_search.n_runs
    law = finished_search.scaling_law()
    code, out, _ = li2("search", "law", finished_search.id)
    assert code == (0 if law.fitted else 1) and ("c = " in out) == law.fitted
    (tmp_path / "bad.json").write_text(json.dumps({"base": {}, "orders": [11], "tolerance": 2}))
    code, _, err = li2("search", "start", str(tmp_path / "bad.json"))
    assert code == 2 and "tolerance" in err


def test_bad_searches_are_refused_naming_the_field(client, tiny, limits):
    base = tiny().to_dict()
    for kwargs, field in (
        ({"tolerance": 0.0}, "tolerance"),
        ({"seeds": 0}, "seeds"),
        ({"max_runs": limits["max_sweep_runs"] + 1}, "max_runs"),
        ({"order_kind": "torus"}, "order_kind"),
    ):
        with pytest.raises(ValidationError) as err:
            client.find_critical_size(base, orders=[11], **{"seeds": 1, "max_runs": 6, **kwargs})
        assert field in str(err.value) or field in (getattr(err.value, "errors", None) or {}), err.value
