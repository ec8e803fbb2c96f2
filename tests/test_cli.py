import json
import subprocess
import sys

import pytest

from coursekit import cli


def test_list_names_every_topic(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lectures/00_index.ipynb" in out and "Sparse double descent" in out
    header, first = out.splitlines()[:2]
    assert header.split()[:2] == ["#", "title"] and first.split()[0] == "00"  # numbered like the notebooks, no index row
    assert "lectures.lottery_tickets, methods.lottery, methods.rewind" in out


def test_list_json_gives_each_topic_and_its_modules(capsys):
    assert cli.main(["list", "--json"]) == 0
    topics = json.loads(capsys.readouterr().out)
    assert [t["number"] for t in topics] == list(range(len(topics)))
    assert topics[2]["modules"] == ["lectures.lottery_tickets", "methods.lottery", "methods.rewind"]
    assert topics[2]["notebook"] == "lectures/02_lottery_tickets.ipynb" and topics[2]["available"] is True


@pytest.mark.parametrize("argv", [["frobnicate"], ["run"], ["run", "x.ipynb", "--scale", "huge"],
                                  ["data", "fetch", "--bogus"], ["run", "x.ipynb", "-p", "no-equals"]])
def test_bad_arguments_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("coursekit")


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "missing.ipynb"], "notebook missing.ipynb does not exist"),
    (["run", "README.md"], "not a notebook"),
    (["data", "where", "cifar"], "unknown data set 'cifar'"),
])
def test_bad_values_one_line_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_data_where_lists_every_data_set(capsys):
    assert cli.main(["data", "where", "digits", "mnist1d"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["digits", "mnist1d"]


def test_param_parsing():
    assert cli._param("EPOCHS=3") == ("EPOCHS", 3)
    assert cli._param("NAME=lenet") == ("NAME", "lenet")
    assert cli._param("LR=1e-2") == ("LR", 0.01)


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "coursekit.tooling.cli", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "00_index" in result.stdout
