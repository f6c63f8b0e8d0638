"""The LSO harness gives tests a real orchestrator-lso that runs playbooks and calls back.

What these tests pin is the contract docs/lso.md describes: the request LSO accepts, the
errors it answers at once, the callback and progress bodies it POSTs later, its bearer
authentication, and that a restart forgets the jobs in flight. The fixtures (``lso``,
``lso_factory``, ``lso_playbooks_dir``, ``lso_receiver``) come from tests/fixtures/lso.py.
"""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from netweave.cli.harness.lso import LSO_VERSION, LsoInstance, generate_api_key, running_lso
from tests.fixtures.lso import CallbackReceiver, LsoFactory, running_receiver

pytestmark = pytest.mark.lso

LOCALHOST: dict[str, Any] = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}

GREETING_PLAYBOOK = """\
- name: greet
  hosts: all
  gather_facts: false
  tasks:
    - name: Say it
      ansible.builtin.command: echo {{ greeting }}
      register: said
      changed_when: false
    - name: Show what was said (a command's stdout is not in Ansible's default output)
      ansible.builtin.debug:
        msg: "said={{ said.stdout }}"
    - name: Write it down
      ansible.builtin.copy:
        dest: "{{ target }}"
        content: "{{ greeting }}"
        mode: "0644"
    - name: Show what LSO added to the extra vars
      ansible.builtin.debug:
        msg: "job_id={{ job_id }} job_files_dir={{ job_files_dir }}"
"""

FAILING_PLAYBOOK = """\
- name: fail on purpose
  hosts: all
  gather_facts: false
  tasks:
    - name: Refuse
      ansible.builtin.fail:
        msg: "refused because {{ reason }}"
"""

SLOW_PLAYBOOK = """\
- name: take a while
  hosts: all
  gather_facts: false
  tasks:
    - name: Wait
      ansible.builtin.command: sleep {{ seconds }}
    - name: Mark the end
      ansible.builtin.copy:
        dest: "{{ target }}"
        content: finished
        mode: "0644"
"""


BROKEN_PLAYBOOK = """\
- name: not even YAML
  hosts: all
  tasks: [
"""


@pytest.fixture(scope="module")
def playbooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own playbooks, apart from whatever the session's ``lso`` serves."""
    directory = tmp_path_factory.mktemp("lso-harness-playbooks")
    for name, text in {
        "greet.yml": GREETING_PLAYBOOK,
        "fail.yml": FAILING_PLAYBOOK,
        "slow.yml": SLOW_PLAYBOOK,
        "broken.yml": BROKEN_PLAYBOOK,
    }.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def lso_here(lso_factory: LsoFactory, playbooks: Path) -> LsoInstance:
    return lso_factory(playbooks)


def post_job(
    instance: LsoInstance, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        instance.playbook_url,
        json=body,
        headers=instance.headers() if headers is None else headers,
        timeout=30,
    )


def started_job_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    uuid.UUID(job_id)  # a UUID in its canonical text form
    assert response.json() == {"job_id": job_id}
    return str(job_id)


def test_version_reports_the_pinned_lso(lso: LsoInstance) -> None:
    assert lso.version_info() == {"api": "2.0", "module": LSO_VERSION}


def test_a_job_runs_the_playbook_and_calls_back_successful(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    target = tmp_path / "greeting.txt"
    started = time.monotonic()

    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": LOCALHOST,
            "extra_vars": {"greeting": "hello-from-netweave", "target": str(target)},
            "callback": lso_receiver.url("callback/greet"),
        },
    )
    job_id = started_job_id(response)
    [callback] = lso_receiver.wait_for("callback/greet", timeout=60)
    elapsed = time.monotonic() - started

    body = callback.body
    assert set(body) == {"status", "job_id", "output", "return_code"}
    assert body["status"] == "successful"
    assert body["job_id"] == job_id
    assert body["return_code"] == 0
    assert all(isinstance(line, str) and line.strip() for line in body["output"])
    assert '    "msg": "said=hello-from-netweave"' in body["output"]
    assert any(f"job_id={job_id}" in line for line in body["output"])
    assert any(f"job_files_dir={lso_here.job_files_dir / job_id}" in line for line in body["output"])
    assert body["output"][-1].startswith("localhost")  # the PLAY RECAP line
    assert target.read_text() == "hello-from-netweave"
    assert callback.headers["Content-Type"] == "application/json"
    assert elapsed < 30, f"a trivial playbook took {elapsed:.1f}s end to end"


def test_a_failing_playbook_calls_back_failed_with_its_return_code(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver
) -> None:
    response = post_job(
        lso_here,
        {
            "playbook_name": "fail.yml",
            "inventory": LOCALHOST,
            "extra_vars": {"reason": "the-test-said-so"},
            "callback": lso_receiver.url("callback/fail"),
        },
    )
    job_id = started_job_id(response)

    [callback] = lso_receiver.wait_for("callback/fail")

    assert callback.body["status"] == "failed"
    assert callback.body["job_id"] == job_id
    assert callback.body["return_code"] == 2  # ansible-playbook: a host failed
    assert any("refused because the-test-said-so" in line for line in callback.body["output"])
    assert any(line.startswith("fatal: [localhost]: FAILED!") for line in callback.body["output"])


def test_an_unreachable_host_calls_back_failed_with_return_code_4(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    """A plain host-name string is an inventory without ansible_connection: SSH, refused here."""
    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": "127.0.0.9",
            "extra_vars": {"greeting": "x", "target": str(tmp_path / "never.txt")},
            "callback": lso_receiver.url("callback/unreachable"),
        },
    )
    started_job_id(response)

    [callback] = lso_receiver.wait_for("callback/unreachable")

    assert callback.body["status"] == "failed"
    assert callback.body["return_code"] == 4
    assert any("UNREACHABLE!" in line for line in callback.body["output"])


def test_a_playbook_that_does_not_parse_is_accepted_then_fails_with_return_code_4(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver
) -> None:
    response = post_job(
        lso_here,
        {
            "playbook_name": "broken.yml",
            "inventory": LOCALHOST,
            "callback": lso_receiver.url("callback/broken"),
        },
    )
    started_job_id(response)

    [callback] = lso_receiver.wait_for("callback/broken")

    assert callback.body["status"] == "failed"
    assert callback.body["return_code"] == 4
    assert callback.body["output"][0].startswith("[ERROR]: YAML parsing failed")


def test_a_one_line_ini_string_inventory_works(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    target = tmp_path / "ini.txt"
    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": "localhost ansible_connection=local",
            "extra_vars": {"greeting": "ini", "target": str(target)},
            "callback": lso_receiver.url("callback/ini"),
        },
    )
    started_job_id(response)

    [callback] = lso_receiver.wait_for("callback/ini")

    assert callback.body["status"] == "successful", callback.body["output"]
    assert target.read_text() == "ini"


def test_an_unknown_playbook_is_refused_at_once_with_410(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver
) -> None:
    started = time.monotonic()
    response = post_job(
        lso_here,
        {
            "playbook_name": "no-such.yml",
            "inventory": LOCALHOST,
            "callback": lso_receiver.url("callback/none"),
        },
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 410
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail == f"Filename '{lso_here.playbooks_dir / 'no-such.yml'}' does not exist."
    assert elapsed < 1.0  # refused before the inventory is validated


@pytest.mark.parametrize(
    ("playbook_name", "status"),
    [("../outside.yml", 400), ("/etc/hostname", 400), ("has space.yml", 422)],
)
def test_a_playbook_name_outside_the_directory_is_refused(
    lso_here: LsoInstance, playbook_name: str, status: int
) -> None:
    response = post_job(lso_here, {"playbook_name": playbook_name, "inventory": LOCALHOST})

    assert response.status_code == status, response.text


def test_an_inventory_ansible_cannot_parse_is_refused_with_422(lso_here: LsoInstance) -> None:
    response = post_job(
        lso_here, {"playbook_name": "greet.yml", "inventory": {"all": {"hosts": ["localhost"]}}}
    )

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["error"] == "invalid_inventory"
    assert detail["reason"] == "unparsable"
    assert detail["parsed_hosts"] == []
    assert isinstance(detail["messages"], list)


def test_a_request_missing_a_field_is_refused_with_fastapis_422(lso_here: LsoInstance) -> None:
    response = post_job(lso_here, {"playbook_name": "greet.yml"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "inventory"]
    assert response.json()["detail"][0]["type"] == "missing"


def test_posting_without_the_trailing_slash_is_redirected(lso_here: LsoInstance) -> None:
    response = httpx.post(f"{lso_here.url}/api/playbook", json={}, timeout=10)

    assert response.status_code == 307
    assert response.headers["location"].endswith("/api/playbook/")


def test_progress_posts_each_chunk_of_output_before_the_callback(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": LOCALHOST,
            "extra_vars": {"greeting": "progressing", "target": str(tmp_path / "p.txt")},
            "callback": lso_receiver.url("callback/progress"),
            "progress": lso_receiver.url("progress/incremental"),
        },
    )
    job_id = started_job_id(response)

    [callback] = lso_receiver.wait_for("callback/progress")
    updates = lso_receiver.posts_to("progress/incremental")

    assert len(updates) >= 4
    assert all(set(update.body) == {"progress"} for update in updates)  # no job_id in them
    assert all(isinstance(line, str) for update in updates for line in update.body["progress"])
    assert updates[0].body == {"progress": ["PLAY [greet] " + "*" * 67]}
    lines = [line for update in updates for line in update.body["progress"]]
    assert any(f"job_id={job_id}" in line for line in lines)
    assert [line.rstrip() for line in callback.body["output"]] == lines
    assert max(update.at for update in updates) <= callback.at


def test_non_incremental_progress_repeats_the_whole_history(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": LOCALHOST,
            "extra_vars": {"greeting": "whole", "target": str(tmp_path / "w.txt")},
            "callback": lso_receiver.url("callback/whole"),
            "progress": lso_receiver.url("progress/whole"),
            "progress_is_incremental": False,
        },
    )
    started_job_id(response)

    lso_receiver.wait_for("callback/whole")
    updates = [update.body["progress"] for update in lso_receiver.posts_to("progress/whole")]

    assert len(updates) >= 2
    for earlier, later in itertools.pairwise(updates):
        assert later[: len(earlier)] == earlier


def test_a_refused_callback_is_not_retried(
    lso_here: LsoInstance, lso_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    lso_receiver.status_for["/callback/refused"] = 500
    response = post_job(
        lso_here,
        {
            "playbook_name": "greet.yml",
            "inventory": LOCALHOST,
            "extra_vars": {"greeting": "once", "target": str(tmp_path / "once.txt")},
            "callback": lso_receiver.url("callback/refused"),
        },
    )
    started_job_id(response)

    lso_receiver.wait_for("callback/refused")
    time.sleep(3)

    assert len(lso_receiver.posts_to("callback/refused")) == 1


def test_with_an_api_key_every_request_needs_the_bearer_token(
    lso_factory: LsoFactory, playbooks: Path
) -> None:
    instance = lso_factory(playbooks, api_key=generate_api_key())
    assert instance.api_key is not None
    version_url = f"{instance.url}/api/version"

    without = httpx.get(version_url, timeout=10)
    wrong = httpx.get(version_url, headers={"Authorization": "Bearer wrong"}, timeout=10)
    right = httpx.get(version_url, headers=instance.headers(), timeout=10)
    job_without = post_job(instance, {"playbook_name": "no-such.yml", "inventory": "x"}, headers={})

    assert (without.status_code, without.json()) == (401, {"detail": "Not authenticated"})
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert job_without.status_code == 401  # authentication comes before any validation


def test_a_restart_forgets_the_jobs_in_flight(playbooks: Path, tmp_path: Path) -> None:
    target = tmp_path / "finished.txt"
    with running_receiver() as receiver:
        with running_lso(playbooks, tmp_path / "data") as first:
            port = first.port
            response = post_job(
                first,
                {
                    "playbook_name": "slow.yml",
                    "inventory": LOCALHOST,
                    "extra_vars": {"seconds": 4, "target": str(target)},
                    "callback": receiver.url("callback/lost"),
                },
            )
            job_id = started_job_id(response)
            time.sleep(1.0)  # the playbook is now sleeping
        with running_lso(playbooks, tmp_path / "data", port=port) as second:
            files = httpx.get(f"{second.url}/api/files/{job_id}", timeout=10)
            time.sleep(6)  # longer than the job would have taken

        assert receiver.posts_to("callback/lost") == []
    assert not target.exists()
    assert files.json() == {"job_id": job_id, "files": []}
