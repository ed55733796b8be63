"""The web page at /ui in headless Chromium, against real API and worker processes.

The job page of a running training charts its loss (and validation loss) from the job's event
stream as the events arrive, with no reload; the jobs list filters; finished jobs show their
generated text and scores; the compare page charts two runs. Each test saves screenshots under
its pytest tmp dir and prints their paths (`-s` shows them; pytest keeps the newest runs'
folders under `/tmp/pytest-of-$USER/pytest-current/`).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLE_TEXT
from tests.support.browser import Browser

from model_trainer.client import API_KEY_ENV, TrainerClient
from platform_core.json_types import JSONValue

TRAIN: dict[str, JSONValue] = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "max_seq_len": 32,
    "batch_size": 8,
    "log_every_steps": 5,
    "device": "cpu",
}
CHART = "document.getElementById('loss-chart').dataset"


def enter_key(browser: Browser, key: str) -> None:
    """What a person does when a page asks for the key: types it and submits the form."""
    browser.wait_for("!document.getElementById('key-form').hidden", timeout=10)
    browser.evaluate(
        f"document.getElementById('key-input').value = {key!r};"
        "document.getElementById('key-form').requestSubmit()"
    )


def count(browser: Browser, expression: str) -> int:
    value = browser.evaluate(f"Number({expression})")
    assert isinstance(value, int | float)
    return int(value)


def test_the_job_page_charts_a_running_training_live(
    url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    client = TrainerClient(url)
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    endless = {**TRAIN, "corpus_id": corpus_id, "max_steps": 10**6, "eval_every_steps": 40}
    job_id = str(client.submit("train", endless)["job_id"])
    with Browser(tmp_path) as browser:
        browser.navigate(f"{url}/ui/job.html?id={job_id}")
        enter_key(browser, service_env[API_KEY_ENV])
        # The chart gains points while the job runs: the page is never reloaded.
        browser.wait_for(f"{CHART}.lossPoints >= 2", timeout=120)
        first = count(browser, f"{CHART}.lossPoints")
        first_step = count(browser, f"{CHART}.lastStep")
        browser.wait_for(f"{CHART}.lossPoints >= {first + 2} && {CHART}.valPoints >= 1", timeout=60)
        assert client.job(job_id)["status"] == "running"
        assert count(browser, f"{CHART}.lastStep") > first_step
        assert browser.evaluate("document.getElementById('status').textContent") == "running"
        # The config the job started with, the model the worker built, and the events so far.
        config = browser.evaluate("document.getElementById('config').textContent")
        assert isinstance(config, str)
        assert "eval_every_steps" in config and "num_params" in config
        assert count(browser, "document.getElementById('events').dataset.count") >= first + 2
        print("screenshot of the live job page:", browser.screenshot(tmp_path / "job-live.png"))

        client.cancel(job_id)
        browser.wait_for("document.getElementById('result').dataset.state === 'error'", timeout=60)
        result = browser.evaluate("document.getElementById('result').textContent")
        assert isinstance(result, str) and "TRAINING_CANCELLED" in result
        assert browser.evaluate("document.getElementById('status').textContent") == "cancelled"
        print("screenshot of the cancelled job:", browser.screenshot(tmp_path / "job-ended.png"))
        assert browser.problems == []
    client.close()
    assert (tmp_path / "job-live.png").read_bytes().startswith(b"\x89PNG")
