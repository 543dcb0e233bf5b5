"""The blob store: a mail's blobs written together, flushed once each, then put in place."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mailbot.store.blobs import BlobStore, StoreError


def test_a_batch_flushes_every_file_before_any_is_in_place_and_each_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "store")
    blobs = [b"the raw mail", b"the Word form", b"the PDF"]
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def flushed(handle: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{handle}")))
        fsync(handle)

    def renamed(source: str, target: Path) -> None:
        events.append(("rename", str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", flushed)
    monkeypatch.setattr(os, "replace", renamed)
    with store.batch() as batch:
        names = [batch.put(data) for data in blobs]
        batch.put(blobs[0])  # the same blob twice is written once
        assert not any(store.exists(name) for name in names)  # nothing in place before the end

    assert [store.get(name) for name in names] == blobs
    kinds = [kind for kind, _ in events]
    files = [where for kind, where in events if kind == "fsync" and ".incoming-" in where]
    folders = [where for kind, where in events if kind == "fsync" and ".incoming-" not in where]
    assert len(files) == 3, events
    assert kinds.index("rename") > max(i for i, (k, w) in enumerate(events) if w in files)
    last_rename = max(i for i, kind in enumerate(kinds) if kind == "rename")
    # Each blob's folder is flushed once, after the renames that name the blobs in it.
    leaves = {str(store.path(name).parent) for name in names}
    assert leaves <= set(folders)
    assert len(folders) == len(set(folders))
    assert all(i > last_rename for i, (k, w) in enumerate(events) if k == "fsync" and w in leaves)


def test_a_batch_that_fails_leaves_none_of_its_blobs_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path / "store")
    kept = store.put(b"stored before")
    with pytest.raises(RuntimeError), store.batch() as batch:
        written = batch.put(b"a file of the mail")
        raise RuntimeError("the judging failed halfway")
    assert not store.exists(written)
    assert store.get(kept) == b"stored before"
    left = [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert left == [kept]


def test_a_disk_that_refuses_is_a_store_error_naming_the_store(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a folder")
    store = BlobStore(tmp_path / "store")
    with pytest.raises(StoreError, match="cannot write to the store"), store.batch() as batch:
        batch.put(b"mail")
    digest = hashlib.sha256(b"mail").hexdigest()
    with pytest.raises(StoreError, match="cannot write to the store"):
        store.put(b"mail", digest)


def test_blobs_written_without_their_folders_are_named_on_disk_by_one_later_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judging process flushes each file; the daemon flushes the batch's folders once."""
    store = BlobStore(tmp_path / "store")
    flushed: list[str] = []
    fsync = os.fsync

    def counted(handle: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{handle}"))
        fsync(handle)

    monkeypatch.setattr(os, "fsync", counted)
    names = []
    for mail in (b"first mail", b"second mail", b"third mail"):
        with store.batch(folders=False) as batch:
            names += [batch.put(mail), batch.put(mail + b" attachment")]
    assert len(flushed) == 6
    assert all(".incoming-" in path for path in flushed), "no folder is flushed yet"
    assert all(store.exists(name) for name in names)

    flushed.clear()
    store.sync_folders([*names, *names])
    leaves = {str(store.path(name).parent) for name in names}
    assert leaves <= set(flushed)
    assert str(store.root) in flushed
    assert len(flushed) == len(set(flushed)), "each folder is flushed once"


def test_a_folder_flush_the_disk_refuses_is_a_store_error(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    name = store.put(b"mail", folders=False)
    store.path(name).unlink()
    store.path(name).parent.rmdir()
    with pytest.raises(StoreError, match="cannot write to the store"):
        store.sync_folders([name])
