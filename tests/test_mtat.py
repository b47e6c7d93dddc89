"""MTAT's format: annotations, top-K tags, splits, and the download (against a local HTTP server)."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from rawtag.data import mtat
from rawtag.data.download import download

from conftest import MTAT_DIR, write_annotations

REAL = MTAT_DIR / "annotations_final.csv"
SYNONYMS_TSV = MTAT_DIR / "synonyms.tsv"
needs_real = pytest.mark.skipif(not REAL.exists(), reason=f"real MTAT annotations absent ({REAL})")
needs_synonyms = pytest.mark.skipif(not SYNONYMS_TSV.exists(), reason=f"synonym groups absent ({SYNONYMS_TSV})")


def _tsv_groups() -> dict[str, list[str]]:
    """synonyms.tsv as published: `merged_tag<TAB>col|col|...` under a header line."""
    lines = SYNONYMS_TSV.read_text().splitlines()[1:]
    return {merged: cols.split("|") for merged, cols in (line.split("\t") for line in lines if line)}


@needs_real
@pytest.mark.mtat
def test_real_top50_matches_published_list():
    ann = mtat.read_annotations(REAL)
    assert len(ann.tags) == 188 and len(ann.clip_ids) == 25863
    assert list(mtat.MTAT_TAGS) == ann.tags
    published = (MTAT_DIR / "splits" / "lee" / "top50_tags.txt").read_text().split()

    def camel(tag):
        first, *rest = tag.split()
        return first + "".join(w.capitalize() for w in rest)

    top = mtat.top_tags(ann, 50)
    assert [camel(t) for t in top] == published
    assert top[0] == "guitar" and top[-1] == "choral"
    # the two published ties are ordered by column position
    assert top.index("no vocal") + 1 == top.index("pop")
    assert top.index("female voice") + 1 == top.index("metal")


@needs_real
@pytest.mark.mtat
@pytest.mark.parametrize("scheme,counts", [("folder", (15250, 1529, 4332)), ("won", (15247, 1529, 4332)),
                                           ("paper", (16963, 4392, 0))])
def test_real_split_counts(scheme, counts):
    result = mtat.splits(mtat.read_annotations(REAL), scheme, 50)
    assert (len(result["train"]), len(result["valid"]), len(result["test"])) == counts
    broken_in_train = [p for p in mtat.BROKEN_CLIPS if p in result["train"]]
    assert len(broken_in_train) == (3 if scheme == "folder" else 0)


@needs_real
@pytest.mark.mtat
def test_real_won_valid_and_test_lists_match():
    import numpy as np

    result = mtat.splits(mtat.read_annotations(REAL), "won", 50)
    for split in ("valid", "test"):
        published = [line.split("\t")[1] for line in np.load(MTAT_DIR / "splits" / "won" / f"{split}.npy")]
        assert sorted(published) == sorted(result[split])


@needs_synonyms
def test_synonym_constant_is_the_published_grouping():
    assert {m: tuple(cols) for m, cols in _tsv_groups().items()} == mtat.SYNONYMS
    assert len(mtat.SYNONYMS) == 29
    columns = [c for cols in mtat.SYNONYMS.values() for c in cols]
    assert len(columns) == len(set(columns)) and set(columns) <= set(mtat.MTAT_TAGS)


@needs_real
@needs_synonyms
@pytest.mark.mtat
def test_real_paper_split_reproduces_the_paper():
    import numpy as np

    ann = mtat.read_annotations(REAL)
    result = mtat.splits(ann, "paper", 50)
    assert (len(result["train"]), len(result["valid"]), result["test"]) == (16963, 4392, [])
    assert (16963, 4392, None) in mtat.LITERATURE_SPLITS.values()  # the paper's reported counts
    # the top 50 merged tags, computed here from synonyms.tsv: a group is the union of its columns,
    # ranked by clips, ties by the position of the group's first column in the file
    groups = _tsv_groups()
    grouped = {c for cols in groups.values() for c in cols}
    members = {**groups, **{t: [t] for t in ann.tags if t not in grouped}}
    clips = {m: int(np.logical_or.reduce([ann.matrix[:, ann.tags.index(c)] == 1 for c in cols]).sum())
             for m, cols in members.items()}
    first = {m: min(ann.tags.index(c) for c in cols) for m, cols in members.items()}
    ranked = sorted(members, key=lambda m: (-clips[m], first[m]))
    assert result["tags"] == ranked[:50]
    assert result["tags"][:3] == ["guitar", "classical", "slow"] and result["tags"][-1] == "no beat"
    assert clips[ranked[49]] > clips[ranked[50]]  # no tie at the boundary: the 50 do not hang on the tie rule
    assert set(result["train"]).isdisjoint(result["valid"])
    assert {p[0] for p in result["train"]} == set("0123456789abc")
    assert {p[0] for p in result["valid"]} == set("def")
    assert not set(mtat.BROKEN_CLIPS) & set(result["train"] + result["valid"])
    assert set(mtat.PAPER_NAMED_CLIPS.values()) <= set(result["valid"])


@needs_real
@pytest.mark.mtat
def test_real_paper_split_cli(tmp_path):
    import json

    from rawtag.__main__ import main

    out = tmp_path / "paper.json"
    assert main(["splits", "--annotations", str(REAL), "--scheme", "paper", "--top-k", "50",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    counts = (len(result["tags"]), len(result["train"]), len(result["valid"]), result["test"])
    assert counts == (50, 16963, 4392, [])
    assert "no singer" in result["tags"] and "no vocals" not in result["tags"]


def test_merge_synonyms_unions_columns_and_keeps_first_column_place(tmp_path):
    f = tmp_path / "a.csv"
    tags = ("b", "y", "c", "x", "z")
    write_annotations(f, [(1, {"b"}, "0/1.mp3"), (2, {"x", "y"}, "0/2.mp3"), (3, {"c"}, "0/3.mp3")], tags=tags)
    merged = mtat.merge_synonyms(mtat.read_annotations(f), {"x": ("x", "y"), "w": ("w",)})
    assert merged.tags == ["b", "x", "c", "z"]  # x sits where y, its group's first column, was; w is absent
    assert merged.matrix[:, 1].tolist() == [0, 1, 0]  # a clip with both columns counts once
    # tie rule: b, x and c have one clip each and keep that order
    assert mtat.top_tags(merged, 3) == ["b", "x", "c"]


def test_splits_paper_merges_and_uses_folders_0c_and_df(tmp_path):
    broken = next(iter(mtat.BROKEN_CLIPS))
    rows = [(1, {"guitars"}, "0/a.mp3"), (2, {"guitar", "women"}, "c/c.mp3"), (3, {"woman"}, "d/d.mp3"),
            (4, {"guitar"}, "f/f.mp3"), (5, set(), "0/untagged.mp3"), (6, {"guitar"}, broken)]
    write_annotations(tmp_path / "a.csv", rows)
    ann = mtat.read_annotations(tmp_path / "a.csv")
    paper = mtat.splits(ann, "paper", 2)
    assert paper == {"tags": ["guitar", "female"], "train": ["0/a.mp3", "c/c.mp3"],
                     "valid": ["d/d.mp3", "f/f.mp3"], "test": []}
    labels = mtat.label_matrix(ann, paper["tags"], paper["train"] + paper["valid"], "paper")
    assert labels.tolist() == [[1, 0], [1, 1], [0, 1], [1, 0]]
    # the raw columns of the same names miss the synonyms: merged tags are labelled with their scheme
    assert mtat.label_matrix(ann, paper["tags"], paper["train"]).tolist() == [[0, 0], [1, 0]]


def test_read_annotations_quoted_tabs_crlf(tmp_path):
    f = tmp_path / "annotations_final.csv"
    write_annotations(f, [(2, {"guitar"}, "f/a-b-01-c-0-29.mp3"), (6, {"piano", "slow"}, "c/x-y-02-z-30-59.mp3")])
    raw = f.read_bytes()
    assert raw.startswith(b'"clip_id"\t"no voice"') and b"\r\n" in raw
    ann = mtat.read_annotations(f)
    assert ann.clip_ids == [2, 6] and ann.mp3_paths[1] == "c/x-y-02-z-30-59.mp3"
    assert ann.matrix[1, ann.tags.index("slow")] == 1 and ann.matrix.sum() == 3


def test_bad_annotation_files_have_clear_errors(tmp_path):
    with pytest.raises(mtat.MTATError, match="no such annotation file"):
        mtat.read_annotations(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(mtat.MTATError, match="not an MTAT annotation file"):
        mtat.read_annotations(tmp_path / "x.csv")


def test_top_tags_tie_rule_and_zero_counts(tmp_path):
    f = tmp_path / "a.csv"
    tags = ("b", "a", "c", "d")
    write_annotations(f, [(1, {"a", "b"}, "0/1.mp3"), (2, {"c"}, "0/2.mp3"), (3, {"c"}, "0/3.mp3")], tags=tags)
    ann = mtat.read_annotations(f)
    assert mtat.top_tags(ann, 3) == ["c", "b", "a"]  # b before a: its column comes first
    assert mtat.top_tags(ann, 4) == ["c", "b", "a"]  # d has no clip, never chosen
    with pytest.raises(mtat.MTATError):
        mtat.top_tags(ann, 0)


def test_splits_folder_and_won(tmp_path):
    broken = next(iter(mtat.BROKEN_CLIPS))
    rows = [(1, {"guitar"}, "0/a.mp3"), (2, {"guitar"}, "b/b.mp3"), (3, {"piano"}, "c/c.mp3"),
            (4, {"guitar"}, "d/d.mp3"), (5, set(), "0/untagged.mp3"), (6, {"guitar"}, broken)]
    write_annotations(tmp_path / "a.csv", rows)
    ann = mtat.read_annotations(tmp_path / "a.csv")
    folder = mtat.splits(ann, "folder", 2)
    assert folder["tags"] == ["guitar", "piano"]
    assert folder["train"] == ["0/a.mp3", "b/b.mp3", broken] and folder["valid"] == ["c/c.mp3"]
    assert folder["test"] == ["d/d.mp3"]
    assert mtat.splits(ann, "won", 2)["train"] == ["0/a.mp3", "b/b.mp3"]
    with pytest.raises(mtat.MTATError, match="unknown split scheme"):
        mtat.splits(ann, "random")


def test_splits_cli_writes_json(tmp_path):
    import json

    from rawtag.__main__ import main

    write_annotations(tmp_path / "a.csv", [(1, {"guitar"}, "0/a.mp3"), (2, {"guitar"}, "c/b.mp3")])
    assert main(["splits", "--annotations", str(tmp_path / "a.csv"), "--scheme", "won", "--top-k", "50",
                 "--json", str(tmp_path / "s.json")]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out == {"tags": ["guitar"], "train": ["0/a.mp3"], "valid": ["c/b.mp3"], "test": []}


# ------------------------------------------------------------------------------------------ download

class Server:
    """A local HTTP server with Range support; it can cut a file short once, answer a Range from the wrong
    offset, and counts requests."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests = dict(files), {}, []
        self.misplaced = set()  # names whose 206 replies start at byte 0, whatever the Range asked
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if self.headers.get("Range"):
                    start = 0 if name in server.misplaced else int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit = server.cut.pop(name, None)
                self.wfile.write(body[start:limit] if limit else body[start:])
                if limit:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mtat/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _split3(blob: bytes) -> dict[str, bytes]:
    third = len(blob) // 3
    return {"mp3.zip.001": blob[:third], "mp3.zip.002": blob[third:2 * third], "mp3.zip.003": blob[2 * third:]}


@pytest.fixture
def mirror():
    members = {f"{c}/clip_{c}_{i}.mp3": bytes([i]) * 5000 + c.encode() * 3000 for c in "0c" for i in range(3)}
    files = {**_split3(_archive(members)), "annotations_final.csv": b'"clip_id"\t"mp3_path"\r\n',
             "clip_info_final.csv": b'"clip_id"\r\n'}
    server = Server(files)
    yield server, members, {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    server.close()


def test_download_interrupted_then_resumed_then_idempotent(mirror, tmp_path):
    server, members, sums = mirror
    server.cut["mp3.zip.002"] = 1000  # the connection drops after 1,000 bytes
    with pytest.raises(mtat.MTATError, match="interrupted.*resume"):
        download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert (tmp_path / "mp3.zip.002.part").stat().st_size == 1000
    assert not (tmp_path / "0").exists()  # nothing extracted from an incomplete download

    download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert ("mp3.zip.002", "bytes=1000-") in server.requests  # resumed with HTTP Range
    for name, data in members.items():
        assert (tmp_path / name).read_bytes() == data
    assert not (tmp_path / ".extracting").exists()

    before = len(server.requests)
    download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert len(server.requests) == before  # nothing fetched again


def test_download_checksum_mismatch(mirror, tmp_path):
    server, _, sums = mirror
    server.files["mp3.zip.003"] = b"corrupted" + server.files["mp3.zip.003"][9:]
    with pytest.raises(mtat.MTATError, match="mp3.zip.003: checksum mismatch.*rerun"):
        download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert (tmp_path / "mp3.zip.003.bad").exists() and not (tmp_path / "mp3.zip.003").exists()
    assert not (tmp_path / "0").exists()


def test_download_refuses_unsafe_archive(tmp_path):
    blob = _archive({"0/ok.mp3": b"x" * 100, "../evil.txt": b"owned"})
    files = _split3(blob)
    server = Server(files)
    try:
        with pytest.raises(mtat.MTATError, match="refusing to extract '../evil.txt'"):
            download(tmp_path / "root", base_url=server.url,
                          files={n: hashlib.sha256(b).hexdigest() for n, b in files.items()}, progress=False)
    finally:
        server.close()
    assert not (tmp_path / "evil.txt").exists()


def test_download_without_network_says_so(tmp_path):
    with pytest.raises(mtat.MTATError, match="cannot reach .*check the network"):
        download(tmp_path, base_url="http://127.0.0.1:9/", files={"annotations_final.csv": "0" * 64},
                      progress=False)
