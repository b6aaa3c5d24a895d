"""Generated SQuAD data, prompt encoding and data-parallel sharding."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scaling_matrix.tiny import tokenizer
from scaling_matrix.tiny.data import (
    DATASET_VERSION,
    IGNORE_INDEX,
    QAExample,
    chunk,
    dataset_dir,
    encode_example,
    ensure_dataset,
    generate_squad,
    global_batch,
    load_examples,
    prompt_text,
    rank_shard,
    validation_indices,
)


def test_generated_squad_is_deterministic_and_extractive() -> None:
    first, again = generate_squad("training"), generate_squad("training")
    assert first == again and first["version"] == DATASET_VERSION
    qas = 0
    for article in first["data"]:
        assert article["title"]
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answer = qa["answers"][0]
                assert para["context"][answer["answer_start"]:].startswith(answer["text"])
                qas += 1
    assert 300 <= qas <= 1000
    train_ids = {qa["id"] for a in first["data"] for p in a["paragraphs"] for qa in p["qas"]}
    val_ids = {qa["id"] for a in generate_squad("validation")["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert len(train_ids) == qas and not train_ids & val_ids


def test_ensure_dataset_writes_files_once(tmp_path: Path) -> None:
    paths = ensure_dataset(tmp_path / "tiny_squad")
    assert sorted(p.name for p in paths.values()) == ["training.json", "validation.json"]
    mtime = paths["training"].stat().st_mtime_ns
    assert ensure_dataset(tmp_path / "tiny_squad")["training"].stat().st_mtime_ns == mtime
    assert json.loads(paths["validation"].read_text())["version"] == DATASET_VERSION
    assert load_examples(paths["training"])[0].qid.startswith("train-")


def test_dataset_dir_resolution(tmp_path: Path) -> None:
    assert dataset_dir(tmp_path / "logs" / "cell", {}) == tmp_path / "logs" / "datasets" / "tiny_squad"
    assert dataset_dir(tmp_path, {"NEMO_DATASETS_CACHE": "/c"}) == Path("/c/tiny_squad")


def test_encode_example_masks_everything_but_the_answer() -> None:
    ex = QAExample("q", "Ana lives in Oslo.", "Where does Ana live?", "Oslo")
    ids, labels = encode_example(ex, 96)
    assert len(ids) == len(labels) == 96
    assert prompt_text(ex) == "Context: Ana lives in Oslo. Question: Where does Ana live? Answer:"
    answer = [t for t in labels if t != IGNORE_INDEX]
    assert answer == tokenizer.encode(" Oslo") + [tokenizer.EOS_ID]
    assert ids[0] == tokenizer.BOS_ID and ids[-1] == tokenizer.PAD_ID
    assert tokenizer.decode(ids) == prompt_text(ex) + " Oslo"


def test_encode_example_truncates_prompt_from_the_left() -> None:
    ex = QAExample("q", "x" * 200, "Which?", "yes")
    ids, labels = encode_example(ex, 32)
    assert len(ids) == 32 and tokenizer.decode(ids).endswith("Answer: yes")
    assert ids[0] == tokenizer.BOS_ID and labels[-1] == tokenizer.EOS_ID


@given(st.integers(0, 500), st.sampled_from([1, 2, 4, 8]), st.sampled_from([8, 16, 32]))
def test_global_batches_are_sharded_disjointly(step: int, world: int, gbs: int) -> None:
    epoch, iteration, batch = global_batch(step, 800, gbs, seed=1234)
    assert len(batch) == gbs and len(set(batch)) == gbs
    assert epoch * (800 // gbs) + iteration == step
    shards = [rank_shard(batch, r, world) for r in range(world)]
    assert sorted(i for s in shards for i in s) == sorted(batch)
    assert all(len(s) == gbs // world for s in shards)
    assert global_batch(step, 800, gbs, seed=1234) == (epoch, iteration, batch)


def test_chunk_and_validation_subset() -> None:
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert len(validation_indices(256, 8, None)) == 256
    assert len(validation_indices(256, 8, 10)) == 80
    assert len(validation_indices(256, 8, 1.0)) == 256
    assert len(validation_indices(256, 8, 0.5)) == 128
    assert validation_indices(256, 8, 0) == []
    assert len(validation_indices(100, 128, None)) == 100
