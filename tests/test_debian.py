"""Installing the course's Debian packages: only as root with apt, and a new machine's lists updated once."""

import subprocess

from coursekit import debian


def _fake_run(results):
    calls = []

    def run(argv, capture_output):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, results.pop(0))

    return run, calls


def test_nothing_is_installed_without_root_or_apt(monkeypatch):
    run, calls = _fake_run([])
    monkeypatch.setattr(debian.subprocess, "run", run)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    assert debian.apt_install("bubblewrap") is False
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    assert debian.apt_install("bubblewrap") is False
    assert calls == []


def test_a_failed_install_updates_the_lists_and_tries_once_more(monkeypatch):
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian.shutil, "which", lambda name: "/usr/bin/apt-get")
    install = ["apt-get", "install", "-y", "-q", "bubblewrap"]
    run, calls = _fake_run([100, 0, 0])
    monkeypatch.setattr(debian.subprocess, "run", run)
    assert debian.apt_install("bubblewrap") is True
    assert calls == [install, ["apt-get", "update", "-q"], install]
    run, calls = _fake_run([0])
    monkeypatch.setattr(debian.subprocess, "run", run)
    assert debian.apt_install("bubblewrap") is True and calls == [install]  # no update when it installs
    run, calls = _fake_run([100, 0, 100])
    monkeypatch.setattr(debian.subprocess, "run", run)
    assert debian.apt_install("bubblewrap") is False and len(calls) == 3
