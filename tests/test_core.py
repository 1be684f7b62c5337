"""The one core: one answer judge for every path, every SDK call in the transport, our own
bugs never mistaken for the server's, and the served tier priced everywhere."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

import flashlane as fl
from flashlane.clock import TestClock
from flashlane.models import cost_of
from tests.conftest import control, scenario, wait_for

SRC = Path(fl.__file__).parent
TRANSPORT = SRC / "call" / "transport.py"
SDK_SERVICES = {"models", "caches", "files", "batches", "aio", "_api_client"}


def test_sdk_client_methods_are_called_in_the_transport_only() -> None:
    """``<anything>.models.x(...)``, ``.caches``, ``.files``, ``.batches``, their ``aio`` twins and the
    private ``_api_client`` appear as call chains in call/transport.py alone (the emulator, which
    serves those paths and never calls the SDK, is not a caller)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == TRANSPORT or "emulator" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                chain, value = [], node.func.value
                while isinstance(value, ast.Attribute):
                    chain.append(value.attr)
                    value = value.value
                if SDK_SERVICES & set(chain) and ("_sdk" in chain or "sdk" in chain or "_api_client" in chain
                                                  or (isinstance(value, ast.Name) and value.id in ("sdk", "_sdk"))):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node.func)}")
                if ast.unparse(node.func) == "genai.Client":
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} makes its own SDK client")
    assert not offenders, "\n".join(offenders)


def test_the_client_does_not_import_the_emulator() -> None:
    tree = ast.parse((SRC / "call" / "client.py").read_text())
    names = [getattr(n, "module", "") or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if "emulator" in n]


def test_lane_public_surface_is_what_users_call() -> None:
    public = {n for n in dir(fl.Lane) if not n.startswith("_")}
    plumbing = {"send", "asend", "guarded", "aguarded", "attempt_config", "attempt_timeout", "build", "record",
                "check_budget", "check_deadline", "send_config", "sdk", "key_for", "quota_key", "run_call",
                "arun_call", "guard", "transport"}
    assert not public & plumbing
    assert {"generate", "agenerate", "stream", "astream", "classify", "extract", "translate", "summarize", "map",
            "amap", "map_frame", "run_task", "stream_task"} <= public


@pytest.fixture
def flex_lane(gemini_emulator: Any) -> Any:
    with fl.Lane(base_url=gemini_emulator.base_url, service_tier="flex", limits="off", clock=TestClock()) as lane:
        yield lane


def test_a_flex_stream_is_priced_at_the_flex_rate(flex_lane: Any) -> None:
    s = flex_lane.stream("Say hello")
    assert "".join(s)
    r = s.result
    assert r is not None and r.usage.output_tokens > 0
    flex = cost_of(r.model, r.usage, service_tier="flex")
    assert r.cost_usd == pytest.approx(flex) and r.cost_usd < cost_of(r.model, r.usage)  # type: ignore[operator]
    assert flex_lane.totals.cost_usd == pytest.approx(flex)


def get_weather(city: str) -> dict[str, Any]:
    """The weather in a city."""
    return {"city": city, "temp_c": 21}


def test_a_flex_tool_loop_is_priced_at_the_flex_rate(flex_lane: Any, gemini_emulator: Any) -> None:
    scenario(gemini_emulator.base_url, {"match": {"nth": 1}, "times": 1,
                                        "action": {"function_calls": [{"name": "get_weather", "args": {"city": "Oslo"}}]}})
    r = flex_lane.generate("Weather in Oslo?", tools=[get_weather], run_tools=True)
    assert r.text and r.tool_rounds == 1 and r.attempts == 2
    assert r.cost_usd == pytest.approx(cost_of(r.model, r.usage, service_tier="flex"))
    assert flex_lane.totals.cost_usd == pytest.approx(r.cost_usd)


class Verdict(BaseModel):
    label: str
    score: float


def test_a_structured_stream_is_validated_against_its_schema(gemini_emulator: Any, flashlane_lane: Any) -> None:
    lane = flashlane_lane
    s = lane.stream("Rate this", schema=Verdict)
    assert "".join(s)
    assert s.result is not None and isinstance(s.result.parsed, Verdict)
    scenario(gemini_emulator.base_url, {"match": {"method": "streamGenerateContent"}, "times": 1,
                                        "action": {"schema_violation": True}})
    with pytest.raises(fl.SchemaViolation) as e:
        "".join(lane.stream("Rate this", schema=Verdict))
    assert e.value.raw_text  # what was shown, kept for inspection; nothing is asked again after text was shown
    assert control(gemini_emulator.base_url, "/_emulator/stats")["by_method"]["streamGenerateContent"] == 2


class Buggy(BaseModel):
    label: str

    @field_validator("label")
    @classmethod
    def explode(cls, value: str) -> str:
        raise TypeError("a bug in answer handling")  # pydantic passes TypeError through, unwrapped


@pytest.mark.parametrize("how", ["generate", "stream"])
def test_a_type_error_in_our_answer_handling_is_a_type_error_not_a_retry(how: str, gemini_emulator: Any,
                                                                         flashlane_lane: Any) -> None:
    lane = flashlane_lane
    with pytest.raises(TypeError, match="a bug in answer handling"):
        if how == "generate":
            lane.generate("Label this", schema=Buggy)
        else:
            "".join(lane.stream("Label this", schema=Buggy))
    assert lane.stats.requests == 1 and lane.stats.retries == 0
    assert not lane.stats.by_kind.get("malformed")


def test_a_call_waiting_for_quota_when_the_run_stops_is_not_sent(gemini_emulator: Any) -> None:
    """A first Ctrl-C stops sending: a call the limiter holds leaves nothing behind on the server."""
    import threading

    from flashlane.errors import Stopped
    from tests.conftest import ManualClock

    clock = ManualClock()
    with fl.Lane(base_url=gemini_emulator.base_url, limits="rpm=1,window=60", clock=clock) as lane:
        lane.generate("first")  # takes the window's only slot
        caught: list[BaseException] = []

        def second() -> None:
            try:
                lane.generate("second")
            except BaseException as e:  # noqa: BLE001 - the test inspects it
                caught.append(e)

        t = threading.Thread(target=second)
        t.start()
        wait_for(lambda: clock.sleeps, timeout=10)  # it waits in the limiter, on the test clock
        lane._client.stop_sending()
        clock.advance(61)
        t.join(10)
    assert len(caught) == 1 and isinstance(caught[0], Stopped)
    assert control(gemini_emulator.base_url, "/_emulator/stats")["requests_total"] == 1
