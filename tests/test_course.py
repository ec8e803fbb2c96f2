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
