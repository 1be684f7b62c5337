"""The Batch API through the official Python SDK and raw HTTP: inline and file jobs, the
Operation shapes of the wire doc, the emulator-clock timeline, scenario outcomes, per-request
errors, out-of-order inline results, the enqueued-token quota and the batch counters."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import jsonschema
import pytest
from google import genai
from google.genai import errors, types

from flashlane.emulator import Emulator
from flashlane.emulator.batches import BATCH_TTL_S, BATCH_TYPE, OUTPUT_TYPE, SYNC_REQUESTS

from .conftest import AIOHTTP_SUBCLASS_WARNING, MODEL, make_client

KEY = {"x-goog-api-key": "test-key"}
SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["pos", "neg"]},
                                             "score": {"type": "number", "minimum": 0, "maximum": 1}},
          "required": ["label", "score"]}
WORDS = ["apple", "banana", "cherry", "damson", "elderberry", "guava", "grape", "honeydew"]


def _inline(n: int) -> list[dict]:
    return [{"contents": [{"parts": [{"text": f"Describe {WORDS[i % len(WORDS)]}{i}"}], "role": "user"}],
             "metadata": {"key": f"row-{i}"}} for i in range(n)]


def _jsonl(n: int, schema: bool = True) -> bytes:
    lines = []
    for i in range(n):
        request: dict = {"contents": [{"parts": [{"text": f"Classify review {i}"}]}]}
        if schema:  # snake_case, as the batch guide's JSONL example sends it
            request["generation_config"] = {"response_mime_type": "application/json",
                                            "response_json_schema": SCHEMA, "temperature": 0.2}
        lines.append(json.dumps({"key": f"k{i}", "request": request}))
    return ("\n".join(lines) + "\n").encode()


def _raw_get(emu: Emulator, name: str) -> dict:
    r = httpx.get(f"{emu.base_url}/v1beta/{name}", headers=KEY)
    assert r.status_code == 200, r.text
    return r.json()


def test_inline_sdk_roundtrip_and_shapes(emu: Emulator, client: genai.Client) -> None:
    job = client.batches.create(model=MODEL, src=_inline(3), config={"display_name": "inline run"})
    assert job.name.startswith("batches/") and len(job.name) == len("batches/") + 36
    assert job.state == types.JobState.JOB_STATE_PENDING and job.display_name == "inline run"
    job = client.batches.get(name=job.name)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED and job.end_time is not None
    got = {r.metadata["key"]: r.response for r in job.dest.inlined_responses}
    assert set(got) == {"row-0", "row-1", "row-2"} and all(r.text for r in got.values())
    op = _raw_get(emu, job.name)
    meta = op["metadata"]
    assert op["done"] is True and meta["@type"] == BATCH_TYPE and meta["state"] == "BATCH_STATE_SUCCEEDED"
    assert meta["batchStats"] == {"requestCount": "3", "successfulRequestCount": "3"}
    assert op["response"]["@type"] == OUTPUT_TYPE
    assert op["response"]["inlinedResponses"] == meta["output"]["inlinedResponses"]
    assert meta["model"] == f"models/{MODEL}" and meta["name"] == op["name"]
    assert [j.name for j in client.batches.list()] == [job.name]
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as ei:
        client.batches.get(name=job.name)
    assert ei.value.code == 404


def test_file_job_honours_schema_and_writes_keyed_lines(emu: Emulator, client: genai.Client) -> None:
    f = client.files.upload(file=io.BytesIO(_jsonl(20)), config={"mime_type": "application/jsonl"})
    job = client.batches.create(model=MODEL, src=f.name, config={"display_name": "file run"})
    assert job.state == types.JobState.JOB_STATE_PENDING and job.dest is None  # the job as created
    job = client.batches.get(name=job.name)
    op = _raw_get(emu, job.name)
    assert op["metadata"]["inputConfig"] == {"fileName": f.name}
    assert job.dest.file_name == f"files/batch-{job.name.removeprefix('batches/')}"
    assert op["response"]["responsesFile"] == op["metadata"]["output"]["responsesFile"] == job.dest.file_name
    out = client.files.get(name=job.dest.file_name)
    assert out.source.value == "GENERATED" and out.download_uri
    lines = [json.loads(x) for x in client.files.download(file=job.dest.file_name).decode().splitlines()]
    assert [x["key"] for x in lines] == [f"k{i}" for i in range(20)]
    for line in lines:
        jsonschema.validate(json.loads(line["response"]["candidates"][0]["content"]["parts"][0]["text"]), SCHEMA)


def test_timeline_on_the_emulator_clock(emu: Emulator, client: genai.Client) -> None:
    emu.configure(batch_turnaround_s=100)
    job = client.batches.create(model=MODEL, src=_inline(10))
    op = _raw_get(emu, job.name)
    assert "done" not in op and "response" not in op and "output" not in op["metadata"]
    assert op["metadata"]["batchStats"] == {"requestCount": "10", "pendingRequestCount": "10"}
    emu.advance_clock(60)  # running: 20 s pending, then 80 s of work; 40 s in = half done
    op = _raw_get(emu, job.name)
    assert op["metadata"]["state"] == "BATCH_STATE_RUNNING" and "done" not in op
    assert op["metadata"]["batchStats"] == {"requestCount": "10", "successfulRequestCount": "5",
                                            "pendingRequestCount": "5"}
    emu.advance_clock(40)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_SUCCEEDED


def test_cancel_is_operation_error_code_1(emu: Emulator, client: genai.Client) -> None:
    emu.configure(batch_turnaround_s=100)
    job = client.batches.create(model=MODEL, src=_inline(4))
    client.batches.cancel(name=job.name)
    job = client.batches.get(name=job.name)
    assert job.state == types.JobState.JOB_STATE_CANCELLED
    op = _raw_get(emu, job.name)
    assert op["done"] is True and op["error"]["code"] == 1 and "response" not in op
    assert op["metadata"]["batchStats"] == {"requestCount": "4", "pendingRequestCount": "4"}
    assert emu.batches()["requests_answered"] == 0


@pytest.mark.parametrize(("state", "code"), [("failed", 13), ("cancelled", 1), ("expired", 4)])
def test_scripted_end_states_with_partial_results(emu: Emulator, client: genai.Client, state: str,
                                                  code: int) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "times": 1,
                        "action": {"batch_state": state, "done_fraction": 0.5}}])
    f = client.files.upload(file=io.BytesIO(_jsonl(10, schema=False)), config={"mime_type": "application/jsonl"})
    job = client.batches.get(name=client.batches.create(model=MODEL, src=f.name).name)
    assert job.state.value == f"JOB_STATE_{state.upper()}"
    op = _raw_get(emu, job.name)
    assert op["error"]["code"] == code and "response" not in op
    assert op["metadata"]["batchStats"] == {"requestCount": "10", "successfulRequestCount": "5",
                                            "pendingRequestCount": "5"}
    lines = client.files.download(file=op["metadata"]["output"]["responsesFile"]).decode().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [f"k{i}" for i in range(5)]
    # the next job (rule used up) succeeds, and only the missing keys were ever answered twice: none
    client.batches.create(model=MODEL, src=[{"contents": "x", "metadata": {"key": "k9"}}])
    assert emu.batches()["keys_answered_twice"] == {}


def test_stays_pending_then_expires_after_48h(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "action": {"batch_state": "pending"}}])
    job = client.batches.create(model=MODEL, src=_inline(2))
    emu.advance_clock(BATCH_TTL_S - 1)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_PENDING
    emu.advance_clock(1)
    job = client.batches.get(name=job.name)
    assert job.state == types.JobState.JOB_STATE_EXPIRED and job.dest is None


def test_per_request_errors_by_key_and_rate(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "times": 1,
                        "action": {"error_keys": ["row-1"], "error_code": 503}},
                       {"match": {"method": "batchGenerateContent"}, "times": 1,
                        "action": {"error_rate": 0.25}}])
    job = client.batches.get(name=client.batches.create(model=MODEL, src=_inline(4)).name)
    errs = {r.metadata["key"]: r.error for r in job.dest.inlined_responses if r.error}
    assert list(errs) == ["row-1"] and errs["row-1"].code == 14
    op = _raw_get(emu, job.name)
    assert op["metadata"]["batchStats"] == {"requestCount": "4", "successfulRequestCount": "3",
                                            "failedRequestCount": "1"}
    f = client.files.upload(file=io.BytesIO(_jsonl(8)), config={"mime_type": "application/jsonl"})
    job = client.batches.get(name=client.batches.create(model=MODEL, src=f.name).name)
    lines = [json.loads(x) for x in client.files.download(file=job.dest.file_name).decode().splitlines()]
    failed = [x["key"] for x in lines if "error" in x]
    assert len(failed) == 2 and all(set(x) == {"key", "error"} for x in lines if "error" in x)
    assert {x["error"]["code"] for x in lines if "error" in x} == {13}


def test_invalid_request_gets_its_own_error(client: genai.Client) -> None:
    src = [{"contents": "ok", "metadata": {"key": "good"}},
           {"contents": "bad", "metadata": {"key": "bad"}, "config": {"temperature": -3}}]
    job = client.batches.get(name=client.batches.create(model=MODEL, src=src).name)
    by_key = {r.metadata["key"]: r for r in job.dest.inlined_responses}
    assert by_key["good"].response.text and by_key["bad"].error.code == 3
    assert "temperature" in by_key["bad"].error.message


def test_inline_results_out_of_order_join_by_key(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "action": {"shuffle": True}}])
    job = client.batches.get(name=client.batches.create(model=MODEL, src=_inline(8)).name)
    keys = [r.metadata["key"] for r in job.dest.inlined_responses]
    assert sorted(keys) == sorted(f"row-{i}" for i in range(8)) and keys != [f"row-{i}" for i in range(8)]
    for r in job.dest.inlined_responses:  # each answer still belongs to its own request
        i = int(r.metadata["key"].split("-")[1])
        assert f"about {WORDS[i]}." in r.response.text  # the answer names its own prompt's word


def test_enqueued_token_quota(emu: Emulator, client: genai.Client) -> None:
    emu.configure(batch_turnaround_s=100, batch_enqueued_tokens=40)
    src = [{"contents": "x" * 60, "metadata": {"key": "a"}}]  # 15 tokens
    first = client.batches.create(model=MODEL, src=src * 2)
    with pytest.raises(errors.ClientError) as ei:
        client.batches.create(model=MODEL, src=src * 2)
    err = ei.value.details["error"]
    assert ei.value.code == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    assert err["message"].startswith("You exceeded your current quota")
    assert [d["@type"] for d in err["details"]] == ["type.googleapis.com/google.rpc.Help"]
    client.batches.create(model="gemini-2.5-flash-lite", src=src * 2)  # another model: its own quota
    emu.advance_clock(100)  # the first job finishes: its tokens leave the queue
    assert client.batches.get(name=first.name).state == types.JobState.JOB_STATE_SUCCEEDED
    client.batches.create(model=MODEL, src=src * 2)
    assert emu.batches()["jobs_created"] == {f"default/{MODEL}": 2, "default/gemini-2.5-flash-lite": 1}


def test_counters_per_project_and_key(emu: Emulator, client: genai.Client) -> None:
    emu.configure(projects={"team": {"keys": ["team-key"]}})
    team = make_client(emu, api_key="team-key")
    client.batches.get(name=client.batches.create(model=MODEL, src=_inline(3)).name)
    job = team.batches.create(model=MODEL, src=_inline(2))
    with pytest.raises(errors.ClientError):  # another project's job is not found
        client.batches.get(name=job.name)
    team.batches.get(name=job.name)
    client.batches.get(name=client.batches.create(model=MODEL, src=_inline(1)).name)  # row-0 again
    stats = emu.batches(keys=True)
    assert stats["jobs_created"] == {f"default/{MODEL}": 2, f"team/{MODEL}": 1}
    assert stats["keys_answered_twice"] == {"default": ["row-0"]}
    assert stats["answered_by_key"]["team"] == {"row-0": 1, "row-1": 1}
    assert emu.stats()["by_method"]["batchGenerateContent"] == 3


def test_bad_create_bodies(emu: Emulator) -> None:
    url = f"{emu.base_url}/v1beta/models/{MODEL}:batchGenerateContent"
    for body, text in [
        ({"batch": {"inputConfig": {"fileName": "files/nope"}}}, "or it may not exist"),
        ({"batch": {"input_config": {}}}, "exactly one of requests or file_name"),
        ({"batch": {"displayName": "x", "inputConfg": {}}}, 'Unknown name "inputConfg"'),
        ({"batch": {"inputConfig": {"requests": {"requests": []}}}}, "at least one request"),
    ]:
        r = httpx.post(url, json=body, headers=KEY)
        assert r.status_code in (400, 403) and text in r.json()["error"]["message"], r.text
    r = httpx.post(f"{emu.base_url}/v1beta/models/gemini-0-x:batchGenerateContent", json={}, headers=KEY)
    assert r.status_code == 404


def test_emulator_process_turnaround_in_real_time(tmp_path: Path) -> None:
    """``flashlane emulator --batch-turnaround 1``: a job is pending at first and done a second later."""
    proc = subprocess.Popen([sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0",
                             "--batch-turnaround", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        f = client.files.upload(file=io.BytesIO(_jsonl(3)), config={"mime_type": "application/jsonl"})
        job = client.batches.create(model=MODEL, src=f.name)
        t0 = time.monotonic()
        assert client.batches.get(name=job.name).state in (types.JobState.JOB_STATE_PENDING,
                                                           types.JobState.JOB_STATE_RUNNING)
        while (state := client.batches.get(name=job.name).state) != types.JobState.JOB_STATE_SUCCEEDED:
            assert time.monotonic() - t0 < 10, state
            time.sleep(0.1)
        assert time.monotonic() - t0 >= 0.5
        out = client.files.download(file=client.batches.get(name=job.name).dest.file_name).decode()
        assert [json.loads(x)["key"] for x in out.splitlines()] == ["k0", "k1", "k2"]
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_big_job_is_answered_in_the_background(emu: Emulator, client: genai.Client) -> None:
    n = SYNC_REQUESTS * 3
    f = client.files.upload(file=io.BytesIO(_jsonl(n, schema=False)), config={"mime_type": "application/jsonl"})
    job = client.batches.create(model=MODEL, src=f.name)
    client.files.delete(name=f.name)  # the job keeps reading its input
    t = time.monotonic()
    assert client.models.generate_content(model=MODEL, contents="still serving?").text
    served_s = time.monotonic() - t
    while (got := client.batches.get(name=job.name)).state != types.JobState.JOB_STATE_SUCCEEDED:
        assert got.state == types.JobState.JOB_STATE_RUNNING and time.monotonic() - t < 60
        time.sleep(0.05)
    assert served_s < 5  # a slice, not the whole job, stood between the call and its answer
    lines = client.files.download(file=got.dest.file_name).decode().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [f"k{i}" for i in range(n)]
    stats = emu.batches()
    assert stats["requests_answered"] == n and stats["keys_answered_twice"] == {}


@pytest.mark.filterwarnings(AIOHTTP_SUBCLASS_WARNING)
async def test_async_client(aclient: genai.client.AsyncClient) -> None:
    f = await aclient.files.upload(file=io.BytesIO(_jsonl(3)), config={"mime_type": "application/jsonl"})
    job = await aclient.batches.create(model=MODEL, src=f.name)
    job = await aclient.batches.get(name=job.name)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert [j.name async for j in await aclient.batches.list()] == [job.name]
    await aclient.batches.delete(name=job.name)


def test_stays_running_with_progress(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"},
                        "action": {"batch_state": "running", "done_fraction": 0.3}}])
    job = client.batches.create(model=MODEL, src=_inline(10))
    emu.advance_clock(3600)
    op = _raw_get(emu, job.name)
    assert op["metadata"]["state"] == "BATCH_STATE_RUNNING" and "done" not in op
    assert op["metadata"]["batchStats"] == {"requestCount": "10", "successfulRequestCount": "3",
                                            "pendingRequestCount": "7"}


def test_file_job_answered_inline(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "action": {"inline_results": True}}])
    f = client.files.upload(file=io.BytesIO(_jsonl(3, schema=False)), config={"mime_type": "application/jsonl"})
    job = client.batches.get(name=client.batches.create(model=MODEL, src=f.name).name)
    assert job.dest.file_name is None
    assert [r.metadata["key"] for r in job.dest.inlined_responses] == ["k0", "k1", "k2"]
    assert all(r.response.text for r in job.dest.inlined_responses)
