"""Organising runs through the SDK and the `li2` command against the real embedded service.

A user of its own (carol), so deleting and archiving cannot disturb the other tests' shared runs:
two tiny runs trained by the real worker, one that groks (fraction 0.9) and one that cannot (0.3
of the pairs for 30 epochs), found again by spec fields, outcome and labels.
"""

from __future__ import annotations

import json
import tarfile
import zipfile

import pytest

from li2_client import Client
from li2_client.cli import main
from li2_client.errors import Conflict, NotFound, ValidationError


@pytest.fixture(scope="module")
def carol(live_service):
    token = live_service.create_user("carol")
    with Client(live_service.url, token=token, timeout=30, retries=2) as client:
        yield client, token


@pytest.fixture(scope="module")
def two_runs(carol, tiny):
    client, _ = carol
    grokker = client.submit(tiny(seed=21), name="Grokker Z11", tags=["organise", "good"], note="fraction 0.9")
    stuck = client.submit(tiny(seed=22, epochs=30, fraction=0.3), tags=["organise"])
    return grokker.wait(timeout=600, poll=0.5, progress=False), stuck.wait(timeout=600, poll=0.5, progress=False)


@pytest.fixture
def li2(live_service, carol, capsys):
    def run(*args):
        code = main(["--url", live_service.url, f"--token={carol[1]}", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_sdk_filters_sorts_and_labels(carol, two_runs):
    client, _ = carol
    grokker, stuck = two_runs
    assert grokker.summary["grokked"] is True and stuck.summary["grokked"] is False
    assert (grokker.name, grokker.tags, grokker.note) == ("Grokker Z11", ["good", "organise"], "fraction 0.9")
    found = lambda **f: [e.id for e in client.list(**f)]  # noqa: E731
    assert found(order=11, grokked=True) == [grokker.id]
    assert found(grokked=False, tag="organise") == [stuck.id]
    assert found(tag=["organise", "good"]) == [grokker.id] and found(name="grokker") == [grokker.id]
    assert found(sort="-final_test_acc") == [grokker.id, stuck.id]
    assert found(sort="final_test_acc") == [stuck.id, grokker.id]
    assert found(train_fraction_max=0.5) == [stuck.id] and found(optimizer="sgd") == []
    with pytest.raises(ValidationError, match="colour"):
        found(colour="red")

    renamed = client.update(stuck.id, name="stuck", tags=["organise", "bad"])
    assert renamed.name == "stuck" and renamed.tags == ["bad", "organise"]
    assert client.update(stuck.id, name=None).name is None
    with pytest.raises(ValidationError, match="tags"):
        client.update(stuck.id, tags=["no spaces allowed"])
    assert client.get(stuck.id).tags == ["bad", "organise"]


def test_sdk_download_archive_and_delete(carol, two_runs, tmp_path):
    client, _ = carol
    grokker, _ = two_runs
    path = client.download(grokker.id, tmp_path / "run.tar.gz")
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
        result = json.loads(tar.extractfile(f"{grokker.id}/result.json").read())  # type: ignore[union-attr]
    assert result["summary"]["grokked"] is True
    stored = {f"{grokker.id}/checkpoints/epoch-{c['epoch']:07d}-{c['kind']}.safetensors" for c in grokker.checkpoints()}
    assert stored and stored <= set(names)
    zipped = client.download(grokker.id, tmp_path / "run.zip", format="zip")
    assert sorted(zipfile.ZipFile(zipped).namelist()) == sorted(names)

    queued = client.submit(client.get(grokker.id).spec | {"seed": 99}, force=True)
    if not queued.refresh().done:
        with pytest.raises(Conflict):
            client.delete(queued.id)
    queued.cancel()
    queued.wait(timeout=300, poll=0.5, progress=False, raise_on_failure=False)
    deleted = client.delete(queued.id)
    assert deleted["deleted"]["experiments"] == 1
    with pytest.raises(NotFound):
        client.get(queued.id)


def test_cli_list_filters_labels_archive_download(li2, two_runs, tmp_path):
    grokker, stuck = two_runs
    code, out, _ = li2("list", "--order", "11", "--grokked", "--tag", "organise", "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)] == [grokker.id]
    code, out, _ = li2("list", "--not-grokked", "--where", "train_fraction_max=0.5", "--sort=-final_test_acc")
    assert code == 0 and stuck.id in out and grokker.id not in out and "1 experiment(s)" in out
    code, _, err = li2("list", "--where", "colour=red")
    assert code == 2 and "colour" in err

    code, out, _ = li2("tag", stuck.id, "cli-tag")
    assert code == 0 and "cli-tag" in out
    code, out, _ = li2("tag", stuck.id, "cli-tag", "--remove", "--json")
    assert code == 0 and "cli-tag" not in json.loads(out)["tags"]
    code, out, _ = li2("name", stuck.id, "named by cli")
    assert code == 0 and "named by cli" in out
    code, _, _ = li2("note", stuck.id, "a note")
    assert code == 0
    code, out, _ = li2("list", "--name", "BY CLI", "--json")
    assert [e["note"] for e in json.loads(out)] == ["a note"]

    code, _, _ = li2("archive", stuck.id)
    code, out, _ = li2("list", "--tag", "organise", "--json")
    assert code == 0 and stuck.id not in {e["id"] for e in json.loads(out)}
    code, out, _ = li2("list", "--archived", "--json")
    assert [e["id"] for e in json.loads(out)] == [stuck.id]
    code, _, _ = li2("archive", stuck.id, "--undo")
    code, out, _ = li2("list", "--tag", "organise", "--json")
    assert stuck.id in {e["id"] for e in json.loads(out)}

    code, out, _ = li2("download", grokker.id, "-o", str(tmp_path / "g.zip"))
    assert code == 0 and zipfile.ZipFile(tmp_path / "g.zip").namelist()
    code, _, err = li2("delete", "0" * 32)
    assert code == 1 and "NotFound" in err


def test_sdk_sweep_labels_archive_and_delete(carol, tiny):
    client, _ = carol
    sweep = client.submit_sweep(tiny(epochs=20).to_dict(), {"seed": [31, 32]}, name="two seeds", tags=["sweepy"])
    assert (sweep.name, sweep.tags) == ("two seeds", ["sweepy"])
    assert [s.id for s in client.list_sweeps(tag="sweepy")] == [sweep.id]
    assert [s.id for s in client.list_sweeps(name="SEEDS")] == [sweep.id]
    archived = client.update_sweep(sweep.id, archived=True, note="hidden")
    assert archived.archived and archived.note == "hidden"
    assert [s.id for s in client.list_sweeps(tag="sweepy")] == []  # archived: hidden by default
    assert [s.id for s in client.list_sweeps(archived=True)] == [sweep.id]
    client.cancel_sweep(sweep.id).wait(timeout=300, poll=0.5, progress=False)
    runs = [r["id"] for r in client.sweep_runs(sweep.id)]
    deleted = client.delete_sweep(sweep.id)
    assert deleted["deleted"]["experiments"] == 2 and deleted["deleted"]["sweeps"] == 1
    for run_id in runs:
        with pytest.raises(NotFound):
            client.get(run_id)
