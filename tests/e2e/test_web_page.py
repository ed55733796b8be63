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
from tests.support.jobs import finished
from typing_extensions import TypedDict

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


class Finished(TypedDict):
    """Two short trainings, a generate and a score from the first, with their results."""

    runs: list[str]
    generate_id: str
    outputs: JSONValue
    score_id: str
    tokens: int


def finished_jobs(client: TrainerClient) -> Finished:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    runs = []
    for rate in (3e-3, 1e-2):
        short = {**TRAIN, "corpus_id": corpus_id, "max_steps": 30, "learning_rate": rate}
        submitted = client.submit("train", short)
        finished(client, str(submitted["job_id"]))
        runs.append(str(submitted["run_id"]))
    prompt: dict[str, JSONValue] = {
        "run_id": runs[0],
        "prompt_text": "To be",
        "max_new_tokens": 40,
        "num_return_sequences": 2,
        "seed": 1,
    }
    generate_id = str(client.submit("generate", prompt)["job_id"])
    outputs = finished(client, generate_id)["outputs"]
    text: dict[str, JSONValue] = {
        "run_id": runs[0],
        "text": "To be, or",
        "detail_level": "per_char",
    }
    score_id = str(client.submit("score", text)["job_id"])
    per_token = finished(client, score_id)["per_token"]
    assert isinstance(per_token, list)
    return {
        "runs": runs,
        "generate_id": generate_id,
        "outputs": outputs,
        "score_id": score_id,
        "tokens": len(per_token),
    }


def test_the_jobs_list_finished_jobs_and_the_run_comparison(
    url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    client = TrainerClient(url)
    jobs = finished_jobs(client)
    client.close()
    with Browser(tmp_path) as browser:
        # A refused key is asked for again; the right one shows the caller's jobs.
        browser.navigate(f"{url}/ui")
        enter_key(browser, "not-a-key")
        browser.wait_for(
            "document.getElementById('key-message').textContent.includes('refused')", timeout=10
        )
        enter_key(browser, service_env[API_KEY_ENV])
        browser.wait_for("document.getElementById('jobs').dataset.count === '4'", timeout=10)
        check_filters(browser, jobs)
        print("screenshot of the jobs list:", browser.screenshot(tmp_path / "jobs.png"))
        check_results(browser, url, jobs)
        print("screenshot of a score job:", browser.screenshot(tmp_path / "score.png"))
        check_comparison(browser, url, jobs)
        print("screenshot of the comparison:", browser.screenshot(tmp_path / "compare.png"))
        # The console shows only the refused key's answers.
        assert browser.problems
        assert all("401" in problem for problem in browser.problems), browser.problems


def set_filters(browser: Browser, **values: str) -> None:
    """Chooses in the filter selects, as a person would: each one's change event fires."""
    for name, value in values.items():
        browser.evaluate(
            f"(() => {{ const select = document.getElementById('{name}'); "
            f"select.value = '{value}'; select.dispatchEvent(new Event('change')); }})()"
        )


def check_filters(browser: Browser, jobs: Finished) -> None:
    """Filters narrow the list and stay in the address."""
    set_filters(browser, type="generate")
    browser.wait_for("document.getElementById('jobs').dataset.count === '1'", timeout=10)
    shown = browser.evaluate("document.querySelector('#jobs tbody tr').dataset.jobId")
    assert shown == jobs["generate_id"]
    assert browser.evaluate("location.search") == "?type=generate"
    set_filters(browser, type="", status="failed")
    browser.wait_for("!document.getElementById('empty').hidden", timeout=10)
    assert browser.evaluate("location.search") == "?status=failed"
    set_filters(browser, status="completed")
    browser.wait_for("document.getElementById('jobs').dataset.count === '4'", timeout=10)


def check_results(browser: Browser, url: str, jobs: Finished) -> None:
    """A finished generate shows its texts (the key is not asked for again on the next page);
    a finished score a row per token."""
    link = f'tr[data-job-id="{jobs["generate_id"]}"] a'
    browser.evaluate(f"document.querySelector('{link}').click()")
    browser.wait_for("document.getElementById('result').dataset.state === 'done'", timeout=10)
    assert browser.evaluate("document.getElementById('key-form').hidden") is True
    texts = browser.evaluate(
        "[...document.querySelectorAll('figure.generated pre')].map(p => p.textContent)"
    )
    assert texts == jobs["outputs"]
    browser.navigate(f"{url}/ui/job.html?id={jobs['score_id']}")
    browser.wait_for("!!document.querySelector('table.tokens')", timeout=10)
    assert count(browser, "document.querySelector('table.tokens').dataset.count") == jobs["tokens"]


def check_comparison(browser: Browser, url: str, jobs: Finished) -> None:
    """Two runs compared: a line each on both charts, and the config key they differ in."""
    first, second = jobs["runs"]
    browser.navigate(f"{url}/ui/compare.html?ids={first},{second}")
    browser.wait_for("document.getElementById('loss-compare').dataset.series === '2'", timeout=10)
    assert count(browser, "document.getElementById('loss-compare').dataset.points") >= 2 * 6
    assert count(browser, "document.getElementById('val-compare').dataset.points") >= 2
    differences = browser.evaluate("document.getElementById('differences').textContent")
    assert isinstance(differences, str) and "learning_rate" in differences
    checked = browser.evaluate("document.querySelectorAll('input[name=run]:checked').length")
    assert checked == 2
