"""A station on a full disk keeps sampling: unwritable samples are said once, not per sample."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from desktop.agent.agent import Agent
from desktop.agent.sampler import CAP_REPORT_EVERY
from desktop.agent.sources import Simulated
from tests.desktop.test_one_process_per_outbox import offline_config
from tests.desktop.test_outbox import _FullDisk


async def test_unwritable_samples_are_reported_once_and_writing_again_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(offline_config(tmp_path), [Simulated(seed=1)])
    outbox = agent.station.outbox
    try:
        assert (await agent.sample_once()) is not None
        real = outbox._db
        outbox._db = _FullDisk(real, rolls_back=True)  # type: ignore[assignment]
        with caplog.at_level(logging.WARNING, logger="desktop.agent.sampler"):
            for _ in range(CAP_REPORT_EVERY + 1):
                assert (await agent.sample_once()) is None
        disk = [e.text for e in agent.state.events if e.kind == "disk"]
        assert len(disk) == 2  # the first, then the thousandth
        assert disk[0].startswith("samples not written (1 so far): database or disk is full")
        assert f"({CAP_REPORT_EVERY} so far)" in disk[1]
        assert len(caplog.records) == 2
        assert all(record.exc_info is None for record in caplog.records)  # no traceback
        outbox._db = real  # space again
        sample = await agent.sample_once()
        assert sample is not None and sample.seq == 2  # no seq used up while full
        assert agent.state.events[-1].text == (
            f"writing samples again, after {CAP_REPORT_EVERY + 1} could not be written"
        )
    finally:
        await agent.stop()
