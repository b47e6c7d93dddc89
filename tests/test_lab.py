"""`./dev lab`'s server, end to end: a Jupyter server rooted at notebooks/ lists the chapters, starts a kernel
from this environment through its REST API, and that kernel runs chapter 01's first code cells.

Everything the server and the kernel write (runtime, config, data, IPython, matplotlib) goes to a temporary
folder; chapter 01's `data_root` and `runs_root` are pointed there too, as papermill would inject them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyter_server", reason="jupyter_server is not installed (pip install -e '.[book]')")
jupyter_client = pytest.importorskip("jupyter_client")
HAS_LAB = importlib.util.find_spec("jupyterlab") is not None  # else a bare jupyter_server, as ./dev lab's

pytestmark = pytest.mark.slow  # starting JupyterLab and a kernel takes several seconds

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTER_01 = next(NOTEBOOKS.glob("01_*.ipynb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, runtime: Path, token: str, log: Path):
        self.proc, self.runtime, self.token, self.log = proc, runtime, token, log
        self.url = None  # from the server's own info file, once it is up

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10):
        req = urllib.request.Request(
            self.url.rstrip("/") + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and "json" in r.headers.get("Content-Type", "") else raw)

    def wait_up(self, timeout: float = 90) -> None:
        """Until the server's info file names its URL and `/api/status` answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            info = self.runtime / f"jpserver-{self.proc.pid}.json"
            if self.url is None and info.exists():
                try:
                    self.url = json.loads(info.read_text())["url"]
                except (ValueError, KeyError):
                    pass  # being written
            if self.url is not None:
                try:
                    if self.request("GET", "/api/status", timeout=2)[0] == 200:
                        return
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"the server did not answer in {timeout:.0f} s:\n{self.log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    runtime = tmp / "runtime"
    env = {**os.environ,
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"), "IPYTHONDIR": str(tmp / "ipython"),
           "MPLCONFIGDIR": str(tmp / "matplotlib")}
    env.pop("RAWTAG_PROJECT", None)  # the kernel must find the project from notebooks/ by itself
    token = secrets.token_hex(16)
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab" if HAS_LAB else "jupyter_server", "--no-browser",
             "--ip=127.0.0.1", f"--port={free_port()}", f"--ServerApp.token={token}",
             f"--ServerApp.root_dir={NOTEBOOKS}", *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(proc, runtime, token, log)
    try:
        srv.wait_up()
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_lab_lists_the_chapters(server):
    status, model = server.request("GET", "/api/contents")
    assert status == 200 and model["type"] == "directory"
    listed = {item["name"] for item in model["content"] if item["type"] == "notebook"}
    chapters = {p.name for p in NOTEBOOKS.glob("0*.ipynb")}
    assert len(chapters) >= 7 and {f"0{i}" for i in range(1, 8)} <= {name[:2] for name in chapters}
    assert chapters <= listed
    if HAS_LAB:
        status, page = server.request("GET", "/lab")
        assert status == 200 and b"JupyterLab" in page


def run_cell(kc, code: str, timeout: float = 120) -> tuple[dict, str]:
    """Execute `code` in the kernel: (the execute_reply's content, everything it printed or displayed)."""
    printed = []

    def hook(msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            printed.append(content["text"])
        elif kind in ("execute_result", "display_data"):
            printed.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            printed.append("\n".join(content["traceback"]))

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return reply["content"], "".join(printed)


def test_a_kernel_from_the_lab_runs_chapter_01(server, tmp_path):
    # as JupyterLab opening the chapter does: the path sets the kernel's working folder (the server runs
    # from a temporary one)
    status, kernel = server.request("POST", "/api/kernels", {"name": "python3", "path": CHAPTER_01.name})
    assert status == 201, kernel
    try:
        connection = server.runtime / f"kernel-{kernel['id']}.json"
        assert connection.exists(), sorted(p.name for p in server.runtime.iterdir())
        kc = jupyter_client.BlockingKernelClient(connection_file=str(connection))
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)

            # this kernel is this environment's python, with this checkout's rawtag, working in notebooks/
            reply, out = run_cell(kc, "import os, sys, rawtag\n"
                                      "print(rawtag.__version__, sys.prefix, rawtag.__file__, os.getcwd(), "
                                      "sep='\\n')")
            assert reply["status"] == "ok", out
            version, prefix, module, cwd = out.split("\n")[:4]
            import rawtag
            assert version == rawtag.__version__
            assert Path(prefix).resolve() == Path(sys.prefix).resolve()
            assert Path(module).resolve().is_relative_to(ROOT)
            assert Path(cwd).resolve() == NOTEBOOKS.resolve()

            cells = [c for c in json.loads(CHAPTER_01.read_text())["cells"] if c["cell_type"] == "code"]
            first = cells[:3]
            assert "parameters" in first[1]["metadata"].get("tags", []), "chapter 01's 2nd cell: parameters"
            # the install guard (does nothing here: rawtag is importable)
            reply, out = run_cell(kc, "".join(first[0]["source"]))
            assert reply["status"] == "ok", out
            # the parameters, then what papermill would inject: no data or runs written into the project
            reply, out = run_cell(kc, "".join(first[1]["source"]))
            assert reply["status"] == "ok", out
            reply, out = run_cell(kc, f"data_root = {str(tmp_path / 'data')!r}\n"
                                      f"runs_root = {str(tmp_path / 'runs')!r}\n")
            assert reply["status"] == "ok", out
            # the imports and the workspace
            reply, out = run_cell(kc, "".join(first[2]["source"]))
            assert reply["status"] == "ok", out
            assert "synthetic set" in out and "quick profile" in out, out
            reply, out = run_cell(kc, "print(type(ws).__name__, ws.data_root, ws.runs_root, sep='\\n')")
            assert out.split("\n")[:3] == ["Workspace", str(tmp_path / "data"), str(tmp_path / "runs")], out
        finally:
            kc.stop_channels()
    finally:
        status, _ = server.request("DELETE", f"/api/kernels/{kernel['id']}")
        assert status == 204
