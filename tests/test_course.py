from coursekit import course


def test_topics_follow_the_lecture():
    table = course.topics()
    assert list(table.index) == list(range(17))
    assert table.loc[0, "notebook"] == "lectures/00_index.ipynb" and table.loc[0, "available"]
    assert table["slug"].is_unique


def test_lecture_notebooks_in_course_order():
    notebooks = course.lecture_notebooks()
    assert notebooks[0].name == "00_index.ipynb"
    assert set(notebooks) == set(course.LECTURES.glob("*.ipynb"))


def test_the_index_links_every_lecture_and_every_link_opens_a_notebook():
    import re

    import nbformat

    from coursekit.tooling.course import LECTURES, contents_markdown

    index = nbformat.read(LECTURES / "00_index.ipynb", as_version=4)
    text = "\n".join(c.source for c in index.cells if c.cell_type == "markdown")
    assert contents_markdown() in text, "regenerate the index's table with course.contents_markdown()"
    linked = re.findall(r"\]\(([^)]+\.ipynb)\)", text)
    assert sorted(linked) == sorted(p.name for p in LECTURES.glob("*.ipynb") if p.name != "00_index.ipynb")
    assert all((LECTURES / link).is_file() for link in linked)
