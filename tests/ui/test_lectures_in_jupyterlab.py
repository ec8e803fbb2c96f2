"""What a student sees: each lecture opened in JupyterLab in Chromium, Run All Cells, every control of every
widget moved, its figure checked to change, and no error in a cell, in a widget or in the browser console.

``make test`` runs the two lectures in ``IN_SUITE`` (a train button, a slider, a drop-down, a multiple
selection) to stay within CI's ten minutes; ``make ui`` runs every lecture (``COURSEKIT_UI=all``; about
15 s each plus the lecture's own run time).
Screenshots go to ``build/ui/``.
"""

from __future__ import annotations

import os
import time

import pytest

from coursekit.tooling.course import LECTURES, REPO

SHOTS = REPO / "build" / "ui"  # screenshots

pytestmark = pytest.mark.slow

IN_SUITE = ("00_index", "16_summary")
CHOSEN = sorted(p.stem for p in LECTURES.glob("*.ipynb")) if os.environ.get("COURSEKIT_UI") == "all" else IN_SUITE

STATE = """
const app = window.jupyterapp, w = app && app.shell.currentWidget;
if (!w || !w.content || !w.sessionContext || !w.context || w.context.path !== arguments[0]) return null;
const code = w.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
return {status: kernel ? kernel.status : 'starting',
        pending: code.filter(c => c.model.executionCount === null).length,
        errors: code.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                   .map(o => o.ename + ': ' + o.evalue))};
"""
# Shut the lecture's kernel down and close its tab (no dialog): the next lecture gets the machine, and
# the page holds only its widgets.
SHUT_DOWN = """
const done = arguments[arguments.length - 1], w = window.jupyterapp.shell.currentWidget;
const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
if (w) { w.dispose(); }
(kernel ? kernel.shutdown() : Promise.resolve()).then(() => done('ok'), err => done(String(err)));
"""
PANEL = "return window.jupyterapp.shell.currentWidget.node"
RUN_ALL = """
const done = arguments[arguments.length - 1], w = window.jupyterapp.shell.currentWidget;
w.sessionContext.ready.then(() => window.jupyterapp.commands.execute('notebook:run-all-cells'))
  .then(() => done('ok'), err => done(String(err)));
"""
# Console messages that say nothing about the course: JupyterLab asking for things a fresh
# server does not have yet. Anything else at SEVERE fails the test.
HARMLESS = ("favicon", "/api/workspaces", "/lab/api/workspaces", "DevTools")


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def _run_all(driver, base: str, token: str, path: str) -> None:
    driver.get(f"{base}/lab/tree/{path}?reset&token={token}")  # reset: only this notebook open
    _wait(lambda: driver.execute_script(STATE, path), 120, f"{path} to open with its kernel")
    assert driver.execute_async_script(RUN_ALL) == "ok"

    def finished():
        state = driver.execute_script(STATE, path)
        assert not (state and state["errors"]), f"{path}: a cell raised {state['errors']}"
        return state and state["pending"] == 0 and state["status"] == "idle"

    _wait(finished, 300, f"every cell of {path} to run")


def _widgets(driver):
    """The course's widgets (interactive_plot, RunComparer) in the open lecture: a VBox of controls over an
    Output."""
    from selenium.webdriver.common.by import By

    boxes = driver.execute_script(PANEL).find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")
    return [b for b in boxes if b.find_elements(By.CSS_SELECTOR, ".widget-output")]


def _moves(box):
    """One callable per control of ``box``: each moves its control to another value."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    moves = []
    for handle in box.find_elements(By.CSS_SELECTOR, ".noUi-handle"):
        if handle.get_attribute("aria-valuemin") == handle.get_attribute("aria-valuemax"):
            continue  # a slider with one value at this scale (disabled): nothing to move
        def slide(h=handle):
            at_end = h.get_attribute("aria-valuenow") == h.get_attribute("aria-valuemax")
            h.click()
            h.send_keys(Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT)
        moves.append(slide)
    for element in box.find_elements(By.CSS_SELECTOR, "select"):
        def choose(e=element):
            menu = Select(e)
            chosen = {o.get_attribute("index") for o in menu.all_selected_options}
            menu.select_by_index(next(i for i in range(len(menu.options)) if str(i) not in chosen))
        moves.append(choose)
    for group in box.find_elements(By.CSS_SELECTOR, ".widget-toggle-buttons"):
        moves.append(lambda g=group: g.find_element(By.CSS_SELECTOR, "button:not(.mod-active)").click())
    run = box.find_elements(By.CSS_SELECTOR, "button.mod-primary")  # RunComparer: change, then press Run
    return [(move, run[0] if run else None) for move in moves]


@pytest.mark.parametrize("stem", CHOSEN)
def test_a_student_runs_the_lecture_and_moves_every_control(browser, lab, stem):
    base, token, _ = lab
    browser.get_log("browser")  # start this lecture's console afresh
    try:
        _check(browser, base, token, stem)
    finally:
        browser.execute_async_script(SHUT_DOWN)  # the next lecture gets the machine to itself


def _check(browser, base: str, token: str, stem: str) -> None:
    from selenium.webdriver.common.by import By

    _run_all(browser, base, token, f"lectures/{stem}.ipynb")
    boxes = _widgets(browser)
    assert boxes, f"{stem}: no widget found on the page"
    browser.save_screenshot(str(SHOTS / f"{stem}-ran.png"))
    moved = 0
    for box in boxes:
        out = box.find_element(By.CSS_SELECTOR, ".widget-output")
        for move, run in _moves(box):
            before = out.get_attribute("innerHTML")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
            move()
            if run is not None:
                run.click()
            after = _wait(lambda b=before, o=out: (h := o.get_attribute("innerHTML")) != b and "jp-OutputArea" in h and h,
                          120, f"{stem}: the figure to change after moving a control")
            assert "Traceback" not in after and "Error displaying widget" not in after, f"{stem}: {after[:2000]}"
            moved += 1
    assert moved, f"{stem}: no control to move"
    browser.save_screenshot(str(SHOTS / f"{stem}-moved.png"))
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Error displaying widget" not in page and "model not found" not in page
    severe = [e["message"] for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and not any(h in e["message"] for h in HARMLESS)]
    assert not severe, f"{stem}: browser console errors:\n" + "\n".join(severe)
