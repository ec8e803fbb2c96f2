"""Lecture 16's map and prompts (coursekit.lectures.directions)."""

import json

from coursekit import claims, course, directions


def test_every_pointer_reaches_a_section_and_every_lecture_is_on_the_map():
    assert directions.pointer_problems(course.LECTURES) == []
    table = directions.course_map(course.TOPICS)
    assert table.index.tolist() == list(range(17)) and table["written"].all()
    claims.check("course map", directions.headline(course.TOPICS, course.LECTURES))
    rendered = directions.map_markdown(course.TOPICS)
    assert all(f"]({t.notebook.name})" in rendered for t in course.TOPICS)


def test_a_renamed_section_or_notebook_is_reported(tmp_path):
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["# 99 · Title\n", "## Kept section"]}
    (tmp_path / "99_x.ipynb").write_text(json.dumps({"cells": [cell]}))
    prompts = (directions.Prompt("Why?", "1", (("99_x", "Kept section"), ("99_x", "Renamed"), ("98_y", "Any"))),)
    problems = directions.pointer_problems(tmp_path, prompts)
    assert problems == ["Why?…: 99_x.ipynb has no section 'Renamed'", "Why?…: no notebook 98_y.ipynb"]


def test_links_are_jupyterlab_anchors_that_survive_markdown():
    assert directions.link("15_sloppy_spectra", "Effective dimension ≪ parameters") == (
        "[Effective dimension ≪ parameters](15_sloppy_spectra.ipynb#Effective-dimension-%E2%89%AA-parameters)")
    assert "?" not in directions.link("02_lottery_tickets", "Where does a ticket keep its weights?").split("(")[1]


def test_the_widget_text_lists_the_prompts_of_the_chosen_lectures():
    text = directions.lectures_markdown(course.TOPICS, ["14_double_descent"])
    assert text.startswith("**1 prompt(s) drawing on Sparse double descent:**")
    assert "When does pruning help generalisation" in text
    assert f"**{len(directions.PROMPTS)} prompt(s) drawing on all lectures:**" in directions.lectures_markdown(
        course.TOPICS, [])
    assert "No prompt points there yet" in directions.lectures_markdown(course.TOPICS, ["00_index"])
