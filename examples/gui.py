"""gui: pick a folder of CSV/.xlsx files and load them with threads, with
processes or with multigil, watching each worker's progress and the
timings side by side (a small Qt window; needs PySide6: pip install
PySide6-Essentials).

    python examples/gui.py [--dir FOLDER] [--workers W]
    python examples/gui.py --selftest shot.png [--dir FOLDER]

--selftest runs all three ways on the folder (or on generated files),
saves a screenshot of the window, prints the timings as JSON and exits
(works headless with QT_QPA_PLATFORM=offscreen).

The loading runs on a background thread; the workers' results reach the
window through a queue that a timer on the GUI thread drains, so no Qt
call happens off the GUI thread. The work itself is examples/load_tasks.py.
"""
import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from load_tasks import load_file, make_folder, table_files  # noqa: E402

MODES = ("threads", "processes", "multigil")
TITLES = {"threads": "ThreadPoolExecutor",
          "processes": "ProcessPoolExecutor (spawn)",
          "multigil": "multigil.Pool"}


# ---- the loading, on a background thread (no Qt here) ----

def make_executor(mode, workers):
    if mode == "threads":
        return cf.ThreadPoolExecutor(workers)
    if mode == "processes":
        return cf.ProcessPoolExecutor(workers,
                                      mp_context=mp.get_context("spawn"))
    import multigil
    return multigil.Pool(workers)


def load_all(mode, paths, workers, events, xlsx_in_workers=True):
    """Load paths with mode's executor; put ("file", mode, summary) for
    each file as it finishes and ("done", mode, seconds or error) at the
    end on events."""
    t = time.perf_counter()
    try:
        here = [p for p in paths if mode == "multigil"
                and not xlsx_in_workers and p.lower().endswith(".xlsx")]
        with make_executor(mode, workers) as ex:
            futures = []
            for p in paths:
                if p in here:
                    continue
                f = ex.submit(load_file, p)
                f.add_done_callback(
                    lambda f: events.put(("file", mode, f.result()))
                    if f.exception() is None else None)
                futures.append(f)
            for p in here:  # openpyxl cannot load in the workers here
                r = load_file(p)
                r["worker"] = "main interpreter"
                events.put(("file", mode, r))
            for f in futures:
                f.result()
        events.put(("done", mode, time.perf_counter() - t))
    except Exception as e:  # shown in the window, not lost on a thread
        events.put(("done", mode, f"{type(e).__name__}: {e}"))


# ---- the window ----

def build_window(QtCore, QtWidgets, paths_of, workers, xlsx_in_workers):
    """The main window class, made here so that importing this module
    (as spawn's worker processes do) never imports Qt."""

    class ModeColumn(QtWidgets.QGroupBox):
        def __init__(self, mode):
            super().__init__(TITLES[mode])
            self.mode = mode
            self.lay = QtWidgets.QVBoxLayout(self)
            self.time = QtWidgets.QLabel("not run")
            self.total = QtWidgets.QProgressBar()
            self.total.setFormat("all files: %v / %m")
            self.lay.addWidget(self.time)
            self.lay.addWidget(self.total)
            self.workers = {}  # worker key -> (bar, label, count, seconds)
            self.lay.addStretch(1)

        def reset(self, n):
            for bar, label, _, _ in self.workers.values():
                bar.deleteLater()
                label.deleteLater()
            self.workers.clear()
            self.total.setRange(0, max(1, n))
            self.total.setValue(0)
            self.time.setText("loading...")

        def add(self, summary):
            key = summary["worker"]
            if key not in self.workers:
                name = key if key == "main interpreter" else \
                    f"worker {len(self.workers) + 1}"
                label = QtWidgets.QLabel(name)
                bar = QtWidgets.QProgressBar()
                bar.setRange(0, self.total.maximum())
                bar.setFormat(f"{name}: %v files")
                at = self.lay.count() - 1
                self.lay.insertWidget(at, label)
                self.lay.insertWidget(at + 1, bar)
                self.workers[key] = [bar, label, 0, 0.0]
                self.workers[key][1].setProperty("name", name)
            w = self.workers[key]
            w[2] += 1
            w[3] += summary["seconds"]
            w[0].setValue(w[2])
            w[1].setText(f"{w[1].property('name')}: {w[2]} files, "
                         f"{w[3]:.2f} s busy")
            self.total.setValue(self.total.value() + 1)

        def done(self, outcome):
            if isinstance(outcome, str):
                self.time.setText(f"failed: {outcome}")
            else:
                self.time.setText(f"{outcome:.2f} s wall time")

    class Window(QtWidgets.QMainWindow):
        finished = QtCore.Signal()

        def __init__(self, folder):
            super().__init__()
            self.setWindowTitle("multigil: load many files")
            self.events = queue.SimpleQueue()
            self.results = {}
            self.running = 0
            central = QtWidgets.QWidget()
            outer = QtWidgets.QVBoxLayout(central)
            row = QtWidgets.QHBoxLayout()
            self.folder = QtWidgets.QLineEdit(folder or "")
            browse = QtWidgets.QPushButton("Folder...")
            browse.clicked.connect(self.pick_folder)
            self.nworkers = QtWidgets.QSpinBox()
            self.nworkers.setRange(1, 64)
            self.nworkers.setValue(workers)
            row.addWidget(QtWidgets.QLabel("Folder:"))
            row.addWidget(self.folder, 1)
            row.addWidget(browse)
            row.addWidget(QtWidgets.QLabel("workers:"))
            row.addWidget(self.nworkers)
            outer.addLayout(row)
            buttons = QtWidgets.QHBoxLayout()
            self.buttons = []
            for mode in MODES:
                b = QtWidgets.QPushButton(f"Load with {mode}")
                b.clicked.connect(lambda _=False, m=mode: self.start([m]))
                buttons.addWidget(b)
                self.buttons.append(b)
            b = QtWidgets.QPushButton("All three, one after another")
            b.clicked.connect(lambda: self.start(list(MODES)))
            buttons.addWidget(b)
            self.buttons.append(b)
            outer.addLayout(buttons)
            cols = QtWidgets.QHBoxLayout()
            self.columns = {m: ModeColumn(m) for m in MODES}
            for c in self.columns.values():
                cols.addWidget(c, 1)
            outer.addLayout(cols, 1)
            self.status = QtWidgets.QLabel("Pick a folder of .csv/.xlsx "
                                           "files, then a way to load them.")
            outer.addWidget(self.status)
            self.setCentralWidget(central)
            self.timer = QtCore.QTimer(self)
            self.timer.timeout.connect(self.drain)
            self.timer.start(30)
            self.resize(980, 420)

        def pick_folder(self):
            d = QtWidgets.QFileDialog.getExistingDirectory(
                self, "Folder of table files", self.folder.text())
            if d:
                self.folder.setText(d)

        def start(self, modes):
            if self.running:
                return
            paths = paths_of(self.folder.text())
            if not paths:
                self.status.setText("No .csv or .xlsx files in that folder.")
                return
            for b in self.buttons:
                b.setEnabled(False)
            self.running = len(modes)
            self.status.setText(f"Loading {len(paths)} files...")
            n = self.nworkers.value()

            def run_all():
                for m in modes:
                    self.events.put(("start", m, len(paths)))
                    load_all(m, paths, n, self.events, xlsx_in_workers)
            threading.Thread(target=run_all, daemon=True).start()

        def drain(self):
            while True:
                try:
                    kind, mode, value = self.events.get_nowait()
                except queue.Empty:
                    return
                col = self.columns[mode]
                if kind == "start":
                    col.reset(value)
                    self.results[mode] = {"files": 0, "rows": 0}
                elif kind == "file":
                    col.add(value)
                    self.results[mode]["files"] += 1
                    self.results[mode]["rows"] += value["rows"]
                else:
                    col.done(value)
                    self.results[mode]["outcome"] = value
                    self.results[mode]["workers"] = len(col.workers)
                    self.running -= 1
                    if self.running == 0:
                        for b in self.buttons:
                            b.setEnabled(True)
                        self.status.setText("Done. " + "   ".join(
                            f"{m}: {c.time.text()}"
                            for m, c in self.columns.items()))
                        self.finished.emit()

    return Window


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="folder to load (with --selftest: "
                    "default a temporary folder of generated files)")
    ap.add_argument("--workers", type=int,
                    default=len(os.sched_getaffinity(0)))
    ap.add_argument("--selftest", metavar="PNG",
                    help="run all three, save a screenshot, print JSON, exit")
    ap.add_argument("--timeout", type=float, default=240.0,
                    help="--selftest gives up after this many seconds")
    a = ap.parse_args(argv)
    try:
        from PySide6 import QtCore, QtWidgets
    except ImportError as e:
        print(f"gui.py needs PySide6 (pip install PySide6-Essentials): {e}",
              file=sys.stderr)
        return 2
    from load_tasks import openpyxl_in_workers
    in_workers, why = openpyxl_in_workers()
    if not in_workers:
        print(f"note: .xlsx files load in the main interpreter in the "
              f"multigil mode: {why}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="multigil-gui-") as tmp:
        folder = a.dir
        if folder is None and a.selftest:
            folder = tmp
            make_folder(folder, n_csv=6, n_xlsx=2, rows=4000)
        app = QtWidgets.QApplication.instance() or \
            QtWidgets.QApplication([sys.argv[0]])
        Window = build_window(QtCore, QtWidgets, _paths_of, a.workers,
                              in_workers)
        win = Window(folder)
        win.show()
        if not a.selftest:
            return app.exec()
        return _selftest(app, win, a, QtCore)


def _paths_of(folder):
    if not folder or not os.path.isdir(folder):
        return []
    return table_files(folder)


def _selftest(app, win, a, QtCore):
    outcome = {"ok": False}

    def finish():
        app.processEvents()
        outcome["ok"] = win.grab().save(a.selftest)
        app.quit()
    win.finished.connect(lambda: QtCore.QTimer.singleShot(100, finish))
    QtCore.QTimer.singleShot(a.timeout * 1000, app.quit)
    QtCore.QTimer.singleShot(0, lambda: win.start(list(MODES)))
    app.exec()
    print(json.dumps(win.results))
    done = all(isinstance(r.get("outcome"), float)
               for r in win.results.values()) and len(win.results) == 3
    return 0 if outcome["ok"] and done else 1


if __name__ == "__main__":
    sys.exit(main())
